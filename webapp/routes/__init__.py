"""One router per area: auth, dashboards, review (findings, proposals, audit), admin, api."""
