use super::*;
use crate::models;

#[test]
fn types_map_to_teardown_kinds() {
    assert_eq!(kind_of_type("Microsoft.Compute/virtualMachines"), Some(Kind::Machine));
    assert_eq!(kind_of_type("microsoft.network/networkinterfaces"), Some(Kind::Machine));
    assert_eq!(kind_of_type("Microsoft.Network/routeTables"), Some(Kind::Network));
    assert_eq!(
        kind_of_type("Microsoft.Compute/availabilitySets"),
        Some(Kind::PlacementGroup)
    );
    assert_eq!(kind_of_type("Microsoft.Storage/storageAccounts"), None);
    assert_eq!(
        api_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"),
        API_COMPUTE
    );
    assert_eq!(api_of("/subscriptions/s/resourceGroups/g"), API_RESOURCES);
    assert_eq!(
        api_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d"),
        API_DISKS
    );
}

#[test]
fn nic_of_a_machine_is_in_its_group() {
    assert_eq!(
        nic_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/k8s-master-0"),
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/k8s-master-0-nic"
    );
}

fn reply(status: u16, body: serde_json::Value) -> arm::Reply {
    arm::Reply {
        status,
        headers: azure_core::http::headers::Headers::new(),
        body,
    }
}

#[test]
fn operation_not_allowed_is_a_quota_unless_something_is_in_use() {
    use hke_provider_api::Class;
    // Azure docs, "Resolve errors for resource quotas".
    let quota = reply(
        409,
        serde_json::json!({"error": {"code": "OperationNotAllowed",
            "message": "Operation results in exceeding quota limits of Core. Maximum allowed: 4, Current in use: 4, Additional requested: 2."}}),
    );
    let e = arm::classify("PUT /vm", &quota);
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert_eq!(e.code.as_deref(), Some("OperationNotAllowed"));
    assert!(
        e.message.contains("quota") && e.message.contains("az vm list-usage"),
        "{e}"
    );
    // The same code while a set still holds a VM, or another operation runs
    // (Azure docs, "Understand common error messages ... virtual machines").
    for message in [
        "Availability Set a1 cannot be deleted. Before deleting an Availability Set please ensure that it does not contain any VM.",
        "Operation 'start' is not allowed on VM 'm1' since another operation is in progress.",
    ] {
        let busy = reply(
            409,
            serde_json::json!({"error": {"code": "OperationNotAllowed", "message": message}}),
        );
        let e = arm::classify("DELETE /x", &busy);
        assert!(e.is_transient(), "{e}");
        assert!(!e.message.contains("quota"), "{e}");
    }
    // A failed operation is classified the same way.
    let over = models::ArmError {
        code: "OperationNotAllowed".into(),
        message: "Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota."
            .into(),
        details: Vec::new(),
    };
    let e = arm::operation_error("/vm", "Failed", &over, None);
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert!(e.message.contains("az vm list-usage"), "{e}");
}

#[test]
fn retryable_codes_are_transient_at_the_top_or_inside() {
    // terraform-provider-azurerm#30197: a failed operation's error.
    let inner = models::ArmError {
        code: "RetryableError".into(),
        message: "A retryable error occurred.".into(),
        details: vec![models::ArmError {
            code: "ReferencedResourceNotProvisioned".into(),
            message: "Cannot proceed with operation because resource /s used by resource /n is not in Succeeded state."
                .into(),
            details: Vec::new(),
        }],
    };
    let e = arm::operation_error("/n", "Failed", &inner, None);
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.code.as_deref(), Some("RetryableError"));
    assert!(
        e.message.contains("ReferencedResourceNotProvisioned: Cannot proceed"),
        "{e}"
    );
    // An unknown outer code with a retryable inner one.
    let wrapped = models::ArmError {
        code: "Conflict".into(),
        message: "conflict".into(),
        details: vec![models::ArmError {
            code: "AnotherOperationInProgress".into(),
            ..Default::default()
        }],
    };
    assert!(arm::is_transient_error(&wrapped));
    let e = arm::classify(
        "PUT /n",
        &reply(
            400,
            serde_json::json!({"error": {"code": "ReferencedResourceNotProvisioned", "message": "m"}}),
        ),
    );
    assert!(e.is_transient(), "{e}");
    // Others stay permanent.
    let alloc = models::ArmError {
        code: "AllocationFailed".into(),
        ..Default::default()
    };
    assert!(!arm::operation_error("/vm", "Failed", &alloc, None).is_transient());
}
