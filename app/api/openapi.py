"""The OpenAPI 3.1 description of the JSON and text API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app.api import openapi_vault

openapi = Blueprint("openapi", __name__, url_prefix="/api/v1")

_ORIGIN = {
    "name": "origin",
    "in": "query",
    "required": False,
    "description": "The log's origin line; may be omitted when the service has one district.",
    "schema": {"type": "string"},
}


def _int(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 0},
    }


_ERROR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "BWC Evidence API",
        "version": "1",
        "description": "Evidence service API. The ledger endpoints serve the RFC 9162 "
        "custody log: C2SP signed checkpoints, leaf bytes and proofs.",
    },
    "paths": {
        "/api/v1/health": {
            "get": {
                "summary": "Liveness and database reachability",
                "responses": {"200": {"description": "OK"}},
            }
        },
        "/api/v1/ledger/checkpoint": {
            "get": {
                "summary": "Latest checkpoint: a C2SP signed note with any witness cosignatures",
                "parameters": [_ORIGIN],
                "responses": {"200": {"description": "The signed note", **_TEXT}, "404": _ERROR},
            }
        },
        "/api/v1/ledger/key": {
            "get": {
                "summary": "The log's verifier key (signed-note vkey format)",
                "parameters": [_ORIGIN],
                "responses": {"200": {"description": "One vkey per line", **_TEXT}},
            }
        },
        "/api/v1/ledger/entries": {
            "get": {
                "summary": "Leaves by index range [start, end), at most 1000 per page",
                "parameters": [
                    _ORIGIN,
                    _int("start", "First index"),
                    _int("end", "One past the last index"),
                ],
                "responses": {
                    "200": {
                        "description": "Leaves",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Entries"}}
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/v1/ledger/proof/inclusion": {
            "get": {
                "summary": "RFC 9162 inclusion proof of a leaf in the tree of a given size",
                "parameters": [
                    _ORIGIN,
                    _int("index", "Leaf index"),
                    _int("tree_size", "Tree size"),
                ],
                "responses": {
                    "200": {
                        "description": "Proof",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/InclusionProof"}
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/v1/ledger/proof/consistency": {
            "get": {
                "summary": "RFC 9162 consistency proof between two tree sizes",
                "parameters": [_ORIGIN, _int("first", "Older size"), _int("second", "Newer size")],
                "responses": {
                    "200": {
                        "description": "Proof",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ConsistencyProof"}
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/v1/ledger/cosignatures": {
            "post": {
                "summary": "Submit a checkpoint with a configured witness's cosignature/v1 line",
                "requestBody": {"required": True, **_TEXT},
                "responses": {
                    "200": {"description": "Names of witnesses newly recorded"},
                    "400": _ERROR,
                    "413": _ERROR,
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "status": {"type": "integer"},
                            "title": {"type": "string"},
                            "detail": {"type": "string"},
                        },
                    }
                },
            },
            "Entries": {
                "type": "object",
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "leaf": {"type": "string", "contentEncoding": "base64"},
                            },
                        },
                    }
                },
            },
            "InclusionProof": {
                "type": "object",
                "required": ["leaf_index", "tree_size", "hashes"],
                "properties": {
                    "leaf_index": {"type": "integer"},
                    "tree_size": {"type": "integer"},
                    "hashes": {"type": "array", "items": {"type": "string"}},
                },
            },
            "ConsistencyProof": {
                "type": "object",
                "required": ["first", "second", "hashes"],
                "properties": {
                    "first": {"type": "integer"},
                    "second": {"type": "integer"},
                    "hashes": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


DOCUMENT["paths"].update(openapi_vault.PATHS)
DOCUMENT["components"]["schemas"].update(openapi_vault.SCHEMAS)
DOCUMENT["components"].setdefault("securitySchemes", {}).update(openapi_vault.SECURITY_SCHEMES)


@openapi.get("/openapi.json")
def document() -> ResponseReturnValue:
    return jsonify(DOCUMENT)
