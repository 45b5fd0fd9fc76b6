//! The Windows profile: the profile's Windows version (given, or read off
//! an acs-engine image pin) and, with Windows pools, the administrator
//! account and the Windows settings.

use crate::catalog::versions::Table;
use crate::cluster::defaults::{self, infer_windows_version};
use crate::cluster::WindowsAccess;
use crate::model::types::{Cloud, WindowsVersion, WindowsVersionError};
use crate::model::vlabs;
use crate::secrets::{is_placeholder, Secret};

use super::access::{check_password, check_username};
use super::V;

/// The Windows profile, in the order of its checks: the pools' default
/// Windows version, and the Windows access when there are Windows pools.
pub(super) fn windows(
    v: &mut V<'_>,
    p: &vlabs::Properties,
    table: &Table,
    cloud: Cloud,
    any_windows: bool,
) -> (WindowsVersion, Option<WindowsAccess>) {
    let default_windows = table.default_windows();
    let wprof = p.windows_profile.clone().unwrap_or_default();
    let profile_windows = profile_version(v, &wprof, default_windows, any_windows);
    check_image_pin(v, &wprof, cloud, any_windows);
    let windows = any_windows.then(|| access(v, &wprof));
    (profile_windows, windows)
}

/// windowsVersion, else the version of the image pin, else the table's.
fn profile_version(
    v: &mut V<'_>,
    wprof: &vlabs::WindowsProfile,
    default_windows: WindowsVersion,
    any_windows: bool,
) -> WindowsVersion {
    let wpath = "properties.windowsProfile";
    match wprof.windows_version.as_deref() {
        Some(s) => parse_windows(v, &format!("{wpath}.windowsVersion"), s).unwrap_or(default_windows),
        None => match infer_windows_version(wprof) {
            Some((field, Err(e))) if any_windows => {
                let val = match &e {
                    WindowsVersionError::Retired(s) | WindowsVersionError::Unknown(s) => s.clone(),
                };
                v.err(
                    &format!("{wpath}.{field}"),
                    format!("the image pins Windows Server {val}, which is retired; supported versions are 2019, 2022 and 2025"),
                    "set windowsProfile.windowsVersion to 2022 and remove the image pin, or run `hke migrate`".to_string(),
                );
                default_windows
            }
            Some((_, Ok(w))) => w,
            _ => default_windows,
        },
    }
}

/// On Azure with Windows pools, an image pin agrees with windowsVersion and
/// names no retired release.
fn check_image_pin(v: &mut V<'_>, wprof: &vlabs::WindowsProfile, cloud: Cloud, any_windows: bool) {
    let wpath = "properties.windowsProfile";
    if let (Some(wv), Some((field, pinned)), true) = (
        wprof.windows_version.as_deref(),
        infer_windows_version(wprof),
        any_windows && cloud == Cloud::Azure,
    ) {
        match pinned {
            Ok(pinned) if wv.parse::<WindowsVersion>().ok() != Some(pinned) => v.err(
                &format!("{wpath}.{field}"),
                format!("the image pin is Windows Server {pinned} but windowsVersion is {wv}"),
                "make them agree, or remove the image pin".to_string(),
            ),
            Ok(_) => {}
            Err(WindowsVersionError::Retired(r) | WindowsVersionError::Unknown(r)) => v.err(
                &format!("{wpath}.{field}"),
                format!(
                    "the image pins Windows Server {r}, which is retired; supported versions are 2019, 2022 and 2025"
                ),
                "remove the image pin (windowsSku/imageVersion), or run `hke migrate`".to_string(),
            ),
        }
    }
}

/// The Windows administrator (user name and password) and settings.
fn access(v: &mut V<'_>, wprof: &vlabs::WindowsProfile) -> WindowsAccess {
    let wpath = "properties.windowsProfile";
    let user = wprof.admin_username.clone().unwrap_or_default();
    if !is_placeholder(&user) {
        check_username(v, &format!("{wpath}.adminUsername"), &user, true);
    }
    let pw = wprof.admin_password.clone().unwrap_or_default();
    check_password(v, &format!("{wpath}.adminPassword"), &pw, &user);
    WindowsAccess {
        admin_username: user,
        admin_password: Secret::new(pw),
        ssh_enabled: wprof.ssh_enabled.unwrap_or(defaults::SSH_ENABLED),
        automatic_updates: wprof.enable_automatic_updates.unwrap_or(defaults::AUTOMATIC_UPDATES),
        pause_image: wprof.windows_pause_image_url.clone().filter(|s| !s.is_empty()),
        always_pull_pause_image: wprof.always_pull_windows_pause_image.unwrap_or(false),
        azure_hybrid_benefit: wprof.enable_ahub.unwrap_or(false),
        azure_image_version: wprof
            .image_version
            .clone()
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("latest")),
    }
}

/// A Windows Server version: supported, or reported (retired or unknown).
pub(super) fn parse_windows(v: &mut V<'_>, path: &str, s: &str) -> Option<WindowsVersion> {
    match s.parse::<WindowsVersion>() {
        Ok(w) => Some(w),
        Err(WindowsVersionError::Retired(r)) => {
            v.err(
                path,
                format!("Windows Server {r} is retired; supported versions are 2019, 2022 and 2025"),
                "use 2022 (hke migrate rewrites retired versions)".to_string(),
            );
            None
        }
        Err(WindowsVersionError::Unknown(u)) => {
            v.err(
                path,
                format!("{u:?} is not a Windows Server version"),
                "use 2019, 2022 or 2025".to_string(),
            );
            None
        }
    }
}
