"""The sObjects the Salesforce emulator knows: fields, types and what the API may write.

Field names, types and the updateable/createable flags follow Salesforce's object reference
for the fields a sales organisation's connector reads and writes; an org holds more fields than
these, the emulator only these (a query naming any other field is `INVALID_FIELD`, as a field
the org does not have is). Formula and system fields are neither createable nor updateable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# describe()'s type -> the SOAP type it reports
SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
              "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string",
              "currency": "xsd:double", "percent": "xsd:double", "double": "xsd:double",
              "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime",
              "boolean": "xsd:boolean", "anyType": "xsd:anyType"}
TEXT_TYPES = {"id", "reference", "string", "picklist", "textarea", "email", "phone"}
NUMBER_TYPES = {"currency", "percent", "double", "int"}


@dataclass
class Field:
    name: str
    type: str
    updateable: bool = False
    createable: bool = False
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None  # the relationship name (Account for AccountId)
    external_id: bool = False
    custom: bool = False
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    picklist: tuple[str, ...] = ()
    visible: bool = True  # a custom field without field-level security is invisible to the API

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "label": self.label or self.name, "type": self.type,
            "soapType": SOAP_TYPES[self.type], "updateable": self.updateable,
            "createable": self.createable, "nillable": self.nillable, "custom": self.custom,
            "externalId": self.external_id, "idLookup": self.name == "Id" or self.external_id,
            "filterable": self.type != "textarea", "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "percent", "datetime"),
            "length": self.length, "precision": self.precision, "scale": self.scale,
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship,
            "unique": False, "calculated": False, "defaultedOnCreate": False,
            "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v,
                                "validFor": None} for v in self.picklist],
        }


@dataclass
class SObject:
    name: str
    key_prefix: str
    fields: dict[str, Field] = field(default_factory=dict)
    createable: bool = True
    updateable: bool = True
    sales_engagement: bool = False  # present only where the org has Sales Engagement
    label: str = ""

    def field(self, name: str) -> Field | None:
        """The field of that name, case-insensitively, if the API user can see it."""
        found = self.fields.get(name) or self._lower().get(name.lower())
        return found if found is not None and found.visible else None

    def relationship(self, name: str) -> Field | None:
        low = name.lower()
        return next((f for f in self.fields.values()
                     if f.relationship and f.relationship.lower() == low and f.visible), None)

    def _lower(self) -> dict[str, Field]:
        return {k.lower(): v for k, v in self.fields.items()}

    def visible_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.visible]


STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
          "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
          "Negotiation/Review", "Closed Won", "Closed Lost")
FORECAST = ("Omitted", "Pipeline", "BestCase", "MostLikely", "Forecast", "Closed")


def _f(spec: str, typ: str, *, ref: str = "", rel: str | None = None, pick: tuple[str, ...] = (),
       length: int = 0) -> Field:
    """`Name:uc` -> a field; u = updateable, c = createable, r = required (not nillable)."""
    name, _, flags = spec.partition(":")
    refs = tuple(r for r in ref.split("|") if r)
    return Field(name=name, type=typ, updateable="u" in flags, createable="c" in flags,
                 nillable="r" not in flags and typ != "boolean", reference_to=refs,
                 relationship=rel if rel is not None else (name[:-2] if refs and name.endswith("Id")
                                                           else None),
                 picklist=pick, length=length or (18 if typ in ("id", "reference") else
                                                  255 if typ in TEXT_TYPES else 0),
                 precision=18 if typ in ("currency", "double") else 3 if typ == "percent" else 0,
                 scale=2 if typ in ("currency", "double") else 0)


def _system(owner: bool = True, deletable: bool = True) -> list[Field]:
    out = [_f("Id", "id"), _f("CreatedDate", "datetime"), _f("CreatedById", "reference", ref="User",
                                                             rel="CreatedBy"),
           _f("LastModifiedDate", "datetime"),
           _f("LastModifiedById", "reference", ref="User", rel="LastModifiedBy"),
           _f("SystemModstamp", "datetime")]
    if deletable:
        out.append(_f("IsDeleted", "boolean"))
    if owner:
        out.append(_f("OwnerId:uc", "reference", ref="User", rel="Owner"))
    return out


def _object(name: str, prefix: str, fields: list[Field], *, owner: bool = True,
            createable: bool = True, updateable: bool = True, sales_engagement: bool = False,
            deletable: bool = True) -> SObject:
    obj = SObject(name=name, key_prefix=prefix, createable=createable, updateable=updateable,
                  sales_engagement=sales_engagement, label=name)
    for f in _system(owner, deletable) + fields:
        obj.fields[f.name] = f
    return obj


def build() -> dict[str, SObject]:
    """A fresh schema (custom fields are added to it per emulator)."""
    objects = [
        _object("User", "005", [
            _f("Username:ucr", "string"), _f("Name", "string"), _f("FirstName:uc", "string"),
            _f("LastName:ucr", "string"), _f("Email:ucr", "email"), _f("IsActive:uc", "boolean"),
        ], owner=False, deletable=False),
        _object("Account", "001", [
            _f("Name:ucr", "string"), _f("Industry:uc", "picklist"), _f("Type:uc", "picklist"),
            _f("NumberOfEmployees:uc", "int"), _f("AnnualRevenue:uc", "currency"),
            _f("BillingCountry:uc", "string"),
        ]),
        _object("Contact", "003", [
            _f("AccountId:uc", "reference", ref="Account"), _f("Name", "string"),
            _f("FirstName:uc", "string"), _f("LastName:ucr", "string"), _f("Email:uc", "email"),
            _f("Title:uc", "string"), _f("LeadSource:uc", "picklist"),
        ]),
        _object("Lead", "00Q", [
            _f("Name", "string"), _f("FirstName:uc", "string"), _f("LastName:ucr", "string"),
            _f("Company:ucr", "string"), _f("Status:ucr", "picklist"),
            _f("LeadSource:uc", "picklist"), _f("Email:uc", "email"), _f("IsConverted", "boolean"),
        ]),
        _object("Campaign", "701", [
            _f("Name:ucr", "string"), _f("Type:uc", "picklist"), _f("Status:uc", "picklist"),
            _f("StartDate:uc", "date"), _f("EndDate:uc", "date"), _f("IsActive:uc", "boolean"),
            _f("ParentId:uc", "reference", ref="Campaign", rel="Parent"),
        ]),
        _object("Opportunity", "006", [
            _f("Name:ucr", "string"), _f("AccountId:uc", "reference", ref="Account"),
            _f("StageName:ucr", "picklist", pick=STAGES), _f("Amount:uc", "currency"),
            _f("Probability:uc", "percent"), _f("CloseDate:ucr", "date"),
            _f("Type:uc", "picklist"), _f("LeadSource:uc", "picklist"),
            _f("ForecastCategory", "picklist", pick=FORECAST),
            _f("ForecastCategoryName:uc", "picklist", pick=FORECAST),
            _f("IsClosed", "boolean"), _f("IsWon", "boolean"), _f("ExpectedRevenue", "currency"),
            _f("CampaignId:uc", "reference", ref="Campaign"), _f("NextStep:uc", "string"),
            _f("Description:uc", "textarea", length=32000),
        ]),
        _object("OpportunityHistory", "008", [
            _f("OpportunityId", "reference", ref="Opportunity"), _f("StageName", "picklist",
                                                                   pick=STAGES),
            _f("Amount", "currency"), _f("CloseDate", "date"), _f("Probability", "percent"),
            _f("ForecastCategory", "picklist", pick=FORECAST), _f("ExpectedRevenue", "currency"),
            _f("PrevAmount", "currency"), _f("PrevCloseDate", "date"),
        ], owner=False, createable=False, updateable=False),
        _object("Task", "00T", [
            _f("Subject:uc", "string"), _f("Status:ucr", "picklist"),
            _f("Priority:uc", "picklist"), _f("ActivityDate:uc", "date"),
            _f("WhatId:uc", "reference", ref="Opportunity|Account|Campaign", rel="What"),
            _f("WhoId:uc", "reference", ref="Contact|Lead", rel="Who"),
            _f("Description:uc", "textarea", length=32000), _f("Type:uc", "picklist"),
            _f("TaskSubtype:c", "picklist"), _f("IsClosed", "boolean"),
            _f("CompletedDateTime", "datetime"),
        ]),
        _object("Event", "00U", [
            _f("Subject:uc", "string"), _f("StartDateTime:uc", "datetime"),
            _f("EndDateTime:uc", "datetime"), _f("ActivityDate:uc", "date"),
            _f("DurationInMinutes:uc", "int"),
            _f("WhatId:uc", "reference", ref="Opportunity|Account|Campaign", rel="What"),
            _f("WhoId:uc", "reference", ref="Contact|Lead", rel="Who"), _f("Type:uc", "picklist"),
        ]),
        _object("CampaignMember", "00v", [
            _f("CampaignId:cr", "reference", ref="Campaign"),
            _f("ContactId:c", "reference", ref="Contact"), _f("LeadId:c", "reference", ref="Lead"),
            _f("Status:uc", "picklist"),
            _f("HasResponded", "boolean"), _f("FirstRespondedDate", "date"),
        ], owner=False),
        _object("EmailTemplate", "00X", [
            _f("Name:ucr", "string"), _f("DeveloperName:ucr", "string"),
            _f("Subject:uc", "string", length=1000), _f("Body:uc", "textarea", length=384000),
            _f("HtmlValue:uc", "textarea", length=384000), _f("TemplateType:cr", "picklist"),
            _f("FolderId:uc", "reference", ref="User", rel="Folder"), _f("IsActive:uc", "boolean"),
            _f("IsBuilderContent", "boolean"), _f("UiType", "picklist"),
        ]),
        _object("ActionCadence", "77C", [
            _f("Name:ucr", "string"), _f("State:u", "picklist"), _f("Description:uc", "textarea"),
            _f("Type:c", "picklist"),
        ], sales_engagement=True),
        _object("ActionCadenceStep", "77D", [
            _f("ActionCadenceId:c", "reference", ref="ActionCadence"),
            _f("ActionCadenceName", "string"), _f("Name:uc", "string"),
            _f("StepTitle:uc", "string"), _f("Type:c", "picklist"), _f("DayOffset:uc", "int"),
            _f("IsOrphan", "boolean"),
        ], owner=False, sales_engagement=True),
        _object("ActionCadenceStepVariant", "0qv", [
            _f("ActionCadenceStepId:c", "reference", ref="ActionCadenceStep"),
            _f("Name:uc", "string"), _f("SplitPercentage:uc", "int"),
            _f("TemplateId:uc", "reference", ref="EmailTemplate", rel="Template"),
            _f("State", "picklist"),
        ], owner=False, sales_engagement=True),
        _object("ActionCadenceTracker", "77E", [
            _f("ActionCadenceId", "reference", ref="ActionCadence"),
            _f("TargetId", "reference", ref="Contact|Lead", rel="Target"),
            _f("State", "picklist"), _f("CompletionReason", "picklist"),
            _f("CompletionDisposition", "picklist"),
            _f("CurrentStepId", "reference", ref="ActionCadenceStep", rel="CurrentStep"),
        ], createable=False, updateable=False, sales_engagement=True),
        _object("ActionCadenceStepTracker", "77F", [
            _f("ActionCadenceId", "reference", ref="ActionCadence"),
            _f("ActionCadenceName", "string"),
            _f("ActionCadenceStepId", "reference", ref="ActionCadenceStep"),
            _f("ActionCadenceStepVariantId", "reference", ref="ActionCadenceStepVariant"),
            _f("ActionCadenceTrackerId", "reference", ref="ActionCadenceTracker"),
            _f("TargetId", "reference", ref="Contact|Lead", rel="Target"),
            _f("State", "picklist"), _f("StepType", "picklist"), _f("StepTitle", "string"),
            _f("CompletionReason", "picklist"), _f("CompletionDate", "datetime"),
            _f("DueDateTime", "datetime"), _f("IsActionTaken", "boolean"),
            _f("ActionTakenDateTime", "datetime"),
        ], owner=False, createable=False, updateable=False, sales_engagement=True),
        # Field-level security: a permission set (made through the Metadata API) and its
        # assignment to the API user make a new custom field visible.
        _object("PermissionSet", "0PS", [
            _f("Name:ucr", "string"), _f("Label:ucr", "string"),
        ], owner=False, createable=False, updateable=False),
        _object("PermissionSetAssignment", "0Pa", [
            _f("AssigneeId:cr", "reference", ref="User"),
            _f("PermissionSetId:cr", "reference", ref="PermissionSet"),
        ], owner=False, updateable=False),
    ]
    return {o.name: o for o in objects}
