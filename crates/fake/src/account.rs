//! The fake's account and the hardware it offers.

use serde_json::{Value, json};

/// The account the token belongs to.
pub(crate) fn account_json() -> Value {
    json!({"type": "user", "username": ACCOUNT, "name": "Fake User", "github_url": null})
}

/// The username of the fake's account: the owner of the deployments it creates.
pub(crate) const ACCOUNT: &str = "fake";

/// The hardware the fake offers: (name, SKU).
pub(crate) const HARDWARE: &[(&str, &str)] = &[
    ("CPU", "cpu"),
    ("Nvidia T4 GPU", "gpu-t4"),
    ("Nvidia A40 (Large) GPU", "gpu-a40-large"),
    ("Nvidia A100 (80GB) GPU", "gpu-a100-large"),
];

/// Whether `sku` is one of [`HARDWARE`].
pub(crate) fn known_sku(sku: &str) -> bool {
    HARDWARE.iter().any(|(_, s)| *s == sku)
}

/// The `GET /v1/hardware` answer: a bare array of `{"name", "sku"}`.
pub(crate) fn hardware_json() -> Value {
    Value::Array(
        HARDWARE
            .iter()
            .map(|(name, sku)| json!({"name": name, "sku": sku}))
            .collect(),
    )
}
