//! The full provisioning cycle: request a code, take it from the transport, redeem it,
//! download the strings.

use swivel_provision::{DeviceInfo, DownloadedStrings, Origin, ProvisionId, Provisioner, Username};

use crate::error::BenchError;
use crate::transport::LastCodeTransport;

/// Request (as an administrator) → deliver → redeem → download strings, for one user.
/// The provisioner must deliver directly through `transport`.
pub async fn full_cycle(
    provisioner: &Provisioner,
    transport: &LastCodeTransport,
    user: &Username,
) -> Result<DownloadedStrings, BenchError> {
    let id = full_cycle_id(provisioner, transport, user).await?;
    Ok(provisioner.download_strings(&id).await?)
}

/// Request → deliver → redeem, returning the provision Id (the cycle without the
/// download).
pub async fn full_cycle_id(
    provisioner: &Provisioner,
    transport: &LastCodeTransport,
    user: &Username,
) -> Result<ProvisionId, BenchError> {
    provisioner.request_provision(user, Origin::Admin).await?;
    let code = transport
        .take_code(user)
        .ok_or_else(|| BenchError::NoCode(user.to_string()))?;
    Ok(provisioner
        .redeem(user, &code, DeviceInfo::default())
        .await?)
}
