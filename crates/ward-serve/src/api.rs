//! The service's JSON documents, and the OpenAPI description of them.

use serde::Serialize;
use ward_infer::Prediction;

/// `POST /v1/classify`'s answer.
#[derive(Serialize)]
pub(crate) struct Classified<'a> {
    pub(crate) predictions: &'a [Prediction],
    /// Decoding, preprocessing and inference, on the worker.
    pub(crate) inference_ms: f64,
    /// Waiting for a worker.
    pub(crate) queued_ms: f64,
}

/// Every error's body: what was wrong, in words a client can act on.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: &'a str,
}

/// `GET /v1/attestation`'s answer: what a client that verifies out of band needs. The same
/// certificate is the one the TLS handshake presents.
#[derive(Serialize)]
pub(crate) struct Attestation {
    pub(crate) tee: String,
    pub(crate) evidence_form: String,
    pub(crate) certificate_pem: String,
    /// The quote (or simulated evidence) carried in the certificate, hex.
    pub(crate) evidence_hex: String,
    pub(crate) workload: Option<serde_json::Value>,
}

/// The OpenAPI 3.1 description of the service.
pub fn openapi() -> serde_json::Value {
    let error = serde_json::json!({
        "description": "What was wrong",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ward attested inference service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An image classifier inside a TEE. The TLS certificate is an RA-TLS \
                certificate: verify its evidence against your policy during the handshake \
                (ward client, or the Python ward_client) before sending an image; an ordinary \
                HTTPS client that does not is talking to an unverified server."
        },
        "paths": {
            "/v1/classify": {"post": {
                "summary": "Classify one image",
                "parameters": [{"name": "top_k", "in": "query", "required": false,
                    "schema": {"type": "integer", "minimum": 1, "default": 5},
                    "description": "How many classes to return, most probable first (more than \
                        the model has returns them all)"}],
                "requestBody": {"required": true, "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "image/gif": {"schema": {"type": "string", "format": "binary"}},
                    "image/webp": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "top_k": {"type": "integer", "minimum": 1}}}}
                }},
                "responses": {
                    "200": {"description": "The top classes",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Classified"}}}},
                    "400": error, "408": error, "413": error, "503": error
                }
            }},
            "/v1/health": {"get": {"summary": "Liveness, the model's shape and counters",
                "responses": {"200": {"description": "Serving", "content": {"application/json": {}}}}}},
            "/v1/attestation": {"get": {"summary": "The RA-TLS certificate and its evidence, for \
                out-of-band verification (check that it is the certificate of your TLS session)",
                "responses": {"200": {"description": "Evidence", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Attestation"}}}}}}},
            "/v1/openapi.json": {"get": {"summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}}
        },
        "components": {"schemas": {
            "Prediction": {"type": "object", "required": ["rank", "index", "label", "probability"],
                "properties": {"rank": {"type": "integer", "minimum": 1},
                    "index": {"type": "integer", "minimum": 0},
                    "label": {"type": "string"},
                    "probability": {"type": "number", "minimum": 0, "maximum": 1}}},
            "Classified": {"type": "object", "required": ["predictions"],
                "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                    "inference_ms": {"type": "number"}, "queued_ms": {"type": "number"}}},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Attestation": {"type": "object",
                "required": ["tee", "evidence_form", "certificate_pem", "evidence_hex"],
                "properties": {"tee": {"type": "string"}, "evidence_form": {"type": "string"},
                    "certificate_pem": {"type": "string"}, "evidence_hex": {"type": "string"},
                    "workload": {"type": ["object", "null"]}}}
        }}
    })
}
