"""The Metadata API part of the Salesforce emulator: SOAP `createMetadata`, `updateMetadata`,
`upsertMetadata` and `readMetadata` for `CustomField` and `PermissionSet` (field permissions).

Every request body and every answer is validated against the Metadata WSDL that ships inside
simple-salesforce (its XML schema, with lxml); a request that does not validate is a SOAP fault
and is recorded in `unexpected`, an answer that does not is recorded in `spec_errors`.

A custom field made here starts invisible to the API user, as in Salesforce (no field-level
security for anyone): it appears in describe, queries and writes once a permission set granting
`readable` (and `editable`, for writes) is assigned to the user (`PermissionSetAssignment`,
created over REST like any record).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from tests.emulators.salesforce.server import Reply, SalesforceEmulator

MD = "http://soap.sforce.com/2006/04/metadata"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FIELD_TYPES = {"Text": "string", "LongTextArea": "textarea", "TextArea": "textarea",
               "Number": "double", "Percent": "percent", "Currency": "currency",
               "Date": "date", "DateTime": "datetime", "Checkbox": "boolean",
               "Picklist": "picklist", "Email": "email"}


def wsdl_path() -> Path:
    import simple_salesforce

    return Path(simple_salesforce.__file__).parent / "metadata.wsdl"


@functools.cache
def xml_schema() -> Any:
    """The Metadata WSDL's embedded XML schema, compiled once per process."""
    from lxml import etree

    text = wsdl_path().read_text()
    start = text.index("<xsd:schema")
    end = text.index("</xsd:schema>") + len("</xsd:schema>")
    schema = text[start:end].replace(
        "<xsd:schema", '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                       f'xmlns:tns="{MD}"', 1)
    return etree.XMLSchema(etree.fromstring(schema.encode()))


class MetadataApi:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emu = emulator
        self.fields: dict[str, dict[str, Any]] = {}  # "Opportunity.X__c" -> its definition
        self.permission_sets: dict[str, dict[str, Any]] = {}  # fullName -> label, permissions
        self.spec_errors: list[str] = []
        self.denied = False  # the API user lacks Modify Metadata: every call is a fault

    # ---- SOAP plumbing --------------------------------------------------------------------
    def fault(self, code: str, message: str) -> Reply:
        from tests.emulators.salesforce.server import Reply

        xml = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP}" '
               f'xmlns:sf="{MD}"><soapenv:Body><soapenv:Fault><faultcode>{escape(code)}'
               f'</faultcode><faultstring>{escape(message)}</faultstring></soapenv:Fault>'
               '</soapenv:Body></soapenv:Envelope>')
        return Reply(500, xml, content_type="text/xml;charset=UTF-8")

    def answer(self, element_xml: str) -> Reply:
        from lxml import etree

        from tests.emulators.salesforce.server import Reply

        doc = etree.fromstring(element_xml.encode())
        if not xml_schema().validate(doc):
            self.spec_errors.append(str(xml_schema().error_log.last_error))
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP}" '
               f'xmlns="{MD}"><soapenv:Body>{element_xml}</soapenv:Body></soapenv:Envelope>')
        return Reply(200, xml, content_type="text/xml;charset=UTF-8")

    def handle(self, version: str, raw: bytes) -> Reply:
        from lxml import etree

        try:
            envelope = etree.fromstring(raw)
        except etree.XMLSyntaxError as exc:
            self.emu.unexpected.append(f"Metadata API: not XML ({exc})")
            return self.fault("soapenv:Client", "Unable to parse the request")
        body = envelope.find(f"{{{SOAP}}}Body")
        call = body[0] if body is not None and len(body) else None
        if call is None:
            self.emu.unexpected.append("Metadata API: empty SOAP body")
            return self.fault("soapenv:Client", "No operation in the request")
        copy = etree.fromstring(etree.tostring(call))
        if not xml_schema().validate(copy):
            error = str(xml_schema().error_log.last_error)
            self.emu.unexpected.append(f"Metadata API request does not match the WSDL: {error}")
            return self.fault("soapenv:Client", f"Element {call.tag}: {error}")
        op = etree.QName(call).localname
        if self.denied:
            return self.fault("sf:INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS: use of the "
                              "Metadata API requires a user with the ModifyAllData or "
                              "ModifyMetadata permissions")
        items = [self._read(m) for m in call.findall(f"{{{MD}}}metadata")]
        if op in ("createMetadata", "updateMetadata", "upsertMetadata"):
            if len(items) > 10:
                return self.fault("sf:LIMIT_EXCEEDED", "LIMIT_EXCEEDED: Too many metadata "
                                                       "components (10 at most).")
            results = [self.save(op, kind, data) for kind, data in items]
            self.recompute()
            tag = "UpsertResult" if op == "upsertMetadata" else "SaveResult"
            parts = "".join(self._result(tag, r) for r in results)
            return self.answer(f'<{op}Response xmlns="{MD}">{parts}</{op}Response>')
        if op == "readMetadata":
            kind = call.findtext(f"{{{MD}}}type") or ""
            names = [n.text or "" for n in call.findall(f"{{{MD}}}fullNames")]
            records = "".join(self._record_xml(kind, n) for n in names)
            return self.answer(f'<readMetadataResponse xmlns="{MD}" xmlns:xsi="{XSI}"><result>'
                               f'{records}</result></readMetadataResponse>')
        self.emu.unexpected.append(f"Metadata API operation {op} is not emulated")
        return self.fault("sf:UNSUPPORTED_OPERATION", f"{op} is not emulated")

    @staticmethod
    def _read(node: Any) -> tuple[str, dict[str, Any]]:
        from lxml import etree

        kind = (node.get(f"{{{XSI}}}type") or "").split(":")[-1]
        data: dict[str, Any] = {}
        for child in node:
            name = etree.QName(child).localname
            if len(child):
                data.setdefault(name, []).append(
                    {etree.QName(c).localname: c.text or "" for c in child})
            else:
                data[name] = child.text or ""
        return kind, data

    @staticmethod
    def _result(tag: str, r: dict[str, Any]) -> str:
        created = f"<created>{'true' if r.get('created') else 'false'}</created>" \
            if tag == "UpsertResult" else ""
        errors = "".join(f"<errors><message>{escape(m)}</message><statusCode>{c}</statusCode>"
                         "</errors>" for c, m in r["errors"])
        return (f"<result>{created}{errors}<fullName>{escape(r['fullName'])}</fullName>"
                f"<success>{'false' if r['errors'] else 'true'}</success></result>")

    # ---- semantics ------------------------------------------------------------------------
    def save(self, op: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        full = data.get("fullName", "")
        out: dict[str, Any] = {"fullName": full, "errors": [], "created": False}
        if kind == "CustomField":
            exists = full in self.fields
            if op == "createMetadata" and exists:
                obj, _, name = full.partition(".")
                out["errors"].append(("DUPLICATE_DEVELOPER_NAME",
                                      f"There is already a field named {name} on {obj}."))
                return out
            if op == "updateMetadata" and not exists:
                out["errors"].append(("INVALID_CROSS_REFERENCE_KEY",
                                      f"In field: fullName - no CustomField named {full} found"))
                return out
            problem = self.field_problem(full, data)
            if problem:
                out["errors"].append(problem)
                return out
            out["created"] = not exists
            self.fields[full] = data
            obj, _, name = full.partition(".")
            f = self.emu.schema[obj].fields.get(name)
            typ = FIELD_TYPES[data["type"]]
            if f is None:
                f = self.emu.add_custom_field(obj, name, typ, label=data.get("label", name),
                                              visible=False)
            f.type, f.label = typ, data.get("label", name)
            f.length = int(data.get("length") or 0)
            f.precision = int(data.get("precision") or 0)
            f.scale = int(data.get("scale") or 0)
            f.external_id = data.get("externalId") == "true"
            return out
        if kind == "PermissionSet":
            exists = full in self.permission_sets
            if op == "createMetadata" and exists:
                out["errors"].append(("DUPLICATE_DEVELOPER_NAME",
                                      f"A permission set named {full} already exists."))
                return out
            if op == "updateMetadata" and not exists:
                out["errors"].append(("INVALID_CROSS_REFERENCE_KEY",
                                      f"In field: fullName - no PermissionSet named {full} "
                                      "found"))
                return out
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", full) or "__" in full:
                out["errors"].append(("INVALID_NAME", f"The name {full!r} is not valid"))
                return out
            if not exists and not data.get("label"):
                out["errors"].append(("FIELD_INTEGRITY_EXCEPTION",
                                      "Label: You must enter a value"))
                return out
            perms: dict[str, tuple[bool, bool]] = dict(
                self.permission_sets.get(full, {}).get("fields", {}))
            for p in data.get("fieldPermissions", []):
                name = p.get("field", "")
                obj, _, fname = name.partition(".")
                if obj not in self.emu.schema or fname not in self.emu.schema[obj].fields:
                    out["errors"].append(("INVALID_CROSS_REFERENCE_KEY",
                                          f"In field: field - no CustomField named {name} found"))
                    return out
                editable = p.get("editable") == "true"
                readable = p.get("readable") == "true" or editable
                perms[name] = (readable, editable)
            record = self.permission_sets.setdefault(full, {"fields": {}})
            record["label"] = data.get("label") or record.get("label") or full
            record["fields"] = perms
            out["created"] = not exists
            if not exists:
                record["id"] = self.emu.add("PermissionSet", {"Name": full,
                                                              "Label": record["label"]})
            return out
        self.emu.unexpected.append(f"Metadata type {kind} is not emulated")
        out["errors"].append(("INVALID_TYPE", f"The metadata type {kind} is not emulated"))
        return out

    def field_problem(self, full: str, data: dict[str, Any]) -> tuple[str, str] | None:
        obj, _, name = full.partition(".")
        if obj not in self.emu.schema or not name:
            return ("INVALID_CROSS_REFERENCE_KEY", f"Cannot find the object {obj or full!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*__c", name) or "__" in name[:-3]:
            return ("INVALID_NAME", f"The field name {name!r} is not valid: custom field names "
                                    "end in __c")
        typ = data.get("type")
        if typ not in FIELD_TYPES:
            return ("FIELD_INTEGRITY_EXCEPTION", f"The type {typ!r} is not emulated")
        if not data.get("label"):
            return ("FIELD_INTEGRITY_EXCEPTION", "Field Label: You must enter a value")
        needs = {"Number": ("precision", "scale"), "Percent": ("precision", "scale"),
                 "Currency": ("precision", "scale"), "Text": ("length",),
                 "LongTextArea": ("length", "visibleLines")}.get(str(typ), ())
        for attr in needs:
            if not data.get(attr):
                return ("FIELD_INTEGRITY_EXCEPTION",
                        f"Must specify '{attr}' for a CustomField of type {typ}")
        if typ == "Text" and int(data["length"]) > 255:
            return ("FIELD_INTEGRITY_EXCEPTION", "Length: the maximum is 255")
        if typ == "LongTextArea" and not 256 <= int(data["length"]) <= 131072:
            return ("FIELD_INTEGRITY_EXCEPTION", "Length must be between 256 and 131072")
        if "precision" in needs and int(data.get("scale") or 0) > int(data["precision"]):
            return ("FIELD_INTEGRITY_EXCEPTION", "Decimal places can't exceed the length")
        return None

    def recompute(self) -> None:
        """Which custom fields the API user sees and may write: those an assigned permission
        set grants."""
        table = self.emu.tables["PermissionSetAssignment"]
        assigned = {table.value(r, "PermissionSetId") for i, r in table.rows.items()
                    if i not in table.deleted
                    and table.value(r, "AssigneeId") == self.emu.user_id}
        grants: dict[str, tuple[bool, bool]] = {}
        for ps in self.permission_sets.values():
            if ps.get("id") in assigned:
                for name, (readable, editable) in ps["fields"].items():
                    old = grants.get(name, (False, False))
                    grants[name] = (old[0] or readable, old[1] or editable)
        for full in self.fields:
            obj, _, name = full.partition(".")
            f = self.emu.schema[obj].fields[name]
            readable, editable = grants.get(full, (False, False))
            f.visible = readable
            f.updateable = f.createable = editable

    def _record_xml(self, kind: str, full: str) -> str:
        if kind == "CustomField" and full in self.fields:
            data = self.fields[full]
            inner = "".join(f"<{k}>{escape(str(data[k]))}</{k}>" for k in
                            ("fullName", "externalId", "label", "length", "precision", "scale",
                             "type", "visibleLines") if k in data)
            return f'<records xsi:type="CustomField">{inner}</records>'
        if kind == "PermissionSet" and full in self.permission_sets:
            ps = self.permission_sets[full]
            perms = "".join(f"<fieldPermissions><editable>{str(e).lower()}</editable><field>"
                            f"{escape(n)}</field><readable>{str(r).lower()}</readable>"
                            "</fieldPermissions>" for n, (r, e) in ps["fields"].items())
            return (f'<records xsi:type="PermissionSet"><fullName>{escape(full)}</fullName>'
                    f'{perms}<label>{escape(ps["label"])}</label></records>')
        # Salesforce answers a name it does not know with an empty record (no fullName).
        return f'<records xsi:type="{escape(kind)}"/>' if kind == "CustomField" else ""
