"""The OpenAPI paths of the vault and the docks: enrolment, reports, tus uploads,
receipts, content reads."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "description": "Refused; `reason` is a stable word (docs/ingest.md)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_DOCK = [{"dockCredential": []}]
_TUS = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"const": "1.0.0"},
}
_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
_EVIDENCE = {"name": "evidence_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PURPOSE = {
    "name": "purpose",
    "in": "query",
    "required": True,
    "description": "Why the footage is accessed; recorded in the custody ledger.",
    "schema": {
        "enum": [
            "incident_review",
            "investigation",
            "complaint",
            "disclosure",
            "legal",
            "wearer_review",
            "audit",
        ]
    },
}
_RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "description": "One byte range (RFC 9110); several ranges get the whole item (200).",
    "schema": {"type": "string"},
}
_MEDIA = {
    "200": {"description": "The whole item"},
    "206": {"description": "The requested range"},
    "304": {"description": "Not modified (If-None-Match / If-Modified-Since)"},
    "400": {"description": "No or unknown purpose"},
    "404": {"description": "No such item, or not one this user may see"},
    "412": {"description": "If-Match failed"},
    "416": {"description": "Range not satisfiable"},
}

PATHS: dict[str, Any] = {
    "/api/v1/docks/enrol": {
        "post": {
            "summary": "Exchange a one-time enrolment token for the dock's credential",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"token": {"type": "string"}}}
                    }
                }
            },
            "responses": {
                "201": {"description": "Credential, ingest public key and log verifier key"},
                "400": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/api/v1/docks/cameras": {
        "get": {
            "summary": "Cameras this dock may offload: registered to its school, not retired",
            "security": _DOCK,
            "responses": {"200": {"description": "Serial, profile, wearer badge"}, "401": _ERROR},
        }
    },
    "/api/v1/docks/heartbeat": {
        "post": {
            "summary": "The dock's state: bays, spool use, queue, last error (≤ 16 KiB JSON)",
            "security": _DOCK,
            "responses": {"204": {"description": "Recorded"}, "400": _ERROR, "401": _ERROR},
        }
    },
    "/api/v1/docks/sessions": {
        "post": {
            "summary": "A docking session report (DESIGN.md §6 vocabulary); raises its alerts",
            "security": _DOCK,
            "responses": {"201": {"description": "Stored"}, "400": _ERROR, "401": _ERROR},
        }
    },
    "/api/v1/docks/activations": {
        "post": {
            "summary": "Activation events from a camera's log, with the measured clock offset",
            "security": _DOCK,
            "responses": {
                "201": {"description": "Stored; idempotent per camera and seq"},
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
            },
        }
    },
    "/api/v1/docks/wipes": {
        "post": {
            "summary": "A camera file was wiped after its verified receipt (custody event)",
            "security": _DOCK,
            "responses": {
                "204": {"description": "Recorded"},
                "404": _ERROR,
                "409": _ERROR,
            },
        }
    },
    "/api/v1/ingest/key": {
        "get": {
            "summary": "The ingest public key docks wrap each file's data key to",
            "security": _DOCK,
            "responses": {"200": {"description": "Version, key, algorithm"}, "401": _ERROR},
        }
    },
    "/api/v1/uploads/": {
        "options": {
            "summary": "tus capabilities (Tus-Version, Tus-Extension, Tus-Max-Size)",
            "responses": {"204": {"description": "Capabilities in headers"}},
        },
        "post": {
            "summary": "tus creation: declare an encrypted file (Upload-Length, Upload-Metadata)",
            "security": _DOCK,
            "parameters": [
                _TUS,
                {
                    "name": "Upload-Length",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer"},
                },
                {
                    "name": "Upload-Metadata",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "201": {"description": "Created; Location names the upload"},
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
                "412": _ERROR,
                "413": _ERROR,
            },
        },
    },
    "/api/v1/uploads/{upload_id}": {
        "parameters": [_ID],
        "options": {
            "summary": "tus capabilities",
            "responses": {"204": {"description": "Capabilities in headers"}},
        },
        "head": {
            "summary": "tus: the offset the service has kept",
            "security": _DOCK,
            "parameters": [_TUS],
            "responses": {
                "200": {"description": "Upload-Offset and Upload-Length"},
                "404": {"description": "No such upload for this dock"},
                "410": {"description": "Rejected, terminated or expired"},
            },
        },
        "patch": {
            "summary": "tus: append bytes at Upload-Offset (optional Upload-Checksum sha256)",
            "security": _DOCK,
            "parameters": [_TUS],
            "requestBody": {
                "content": {"application/offset+octet-stream": {"schema": {"type": "string"}}}
            },
            "responses": {
                "204": {"description": "Stored; the last PATCH returns after verification"},
                "409": _ERROR,
                "410": _ERROR,
                "415": _ERROR,
                "422": _ERROR,
                "423": _ERROR,
                "460": _ERROR,
                "503": _ERROR,
            },
        },
        "delete": {
            "summary": "tus termination: abandon an upload in progress",
            "security": _DOCK,
            "parameters": [_TUS],
            "responses": {"204": {"description": "Terminated"}, "409": _ERROR},
        },
    },
    "/api/v1/uploads/{upload_id}/receipt": {
        "get": {
            "summary": "Receipt: received, verified (with inclusion proof and checkpoint) "
            "or rejected",
            "security": _DOCK,
            "parameters": [_ID],
            "responses": {
                "200": {
                    "description": "The receipt",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}
                    },
                },
                "404": _ERROR,
            },
        }
    },
    "/api/v1/evidence/{evidence_id}/content": {
        "get": {
            "summary": "The original, decrypted on the fly; ranged; recorded with its purpose",
            "parameters": [
                _EVIDENCE,
                _PURPOSE,
                _RANGE,
                {"name": "download", "in": "query", "required": False, "schema": {"enum": ["1"]}},
            ],
            "responses": _MEDIA,
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "Receipt": {
        "type": "object",
        "required": ["upload_id", "status"],
        "properties": {
            "upload_id": {"type": "string"},
            "status": {"enum": ["received", "verified", "rejected"]},
            "reason": {"type": "string"},
            "evidence_id": {"type": "string"},
            "sha256": {"type": "string"},
            "size": {"type": "integer"},
            "leaf_index": {"type": "integer"},
            "leaf": {"type": "string"},
            "inclusion_proof": {"$ref": "#/components/schemas/InclusionProof"},
            "checkpoint": {"type": "string"},
        },
    }
}

SECURITY_SCHEMES: dict[str, Any] = {
    "dockCredential": {"type": "http", "scheme": "bearer", "description": "A dock credential"}
}
