//! Who is asking, and for which tenant: a bearer token with read and/or write scope (none
//! configured: anyone, for a service on loopback), and the tenant from `X-Scope-OrgID` (the
//! header Cortex, Mimir and Loki use; `default` without it). Every query and write is scoped to
//! that tenant, so one tenant never sees or changes another's data.

use crate::config::{Scope, ServeConfig, Token};
use crate::error::{Result, ServeError};
use axum::http::HeaderMap;

pub const TENANT_HEADER: &str = "x-scope-orgid";
pub const DEFAULT_TENANT: &str = "default";

/// The tenant a request acts for, once its token allows it.
pub fn authorize(config: &ServeConfig, headers: &HeaderMap, scope: Scope) -> Result<String> {
    let tenant = match headers.get(TENANT_HEADER) {
        None => DEFAULT_TENANT.to_string(),
        Some(value) => {
            let tenant = value.to_str().unwrap_or("");
            let ok = !tenant.is_empty()
                && tenant.len() <= 64
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(ServeError::BadRequest(
                    "X-Scope-OrgID must be 1 to 64 letters, digits, `_`, `-` or `.`".into(),
                ));
            }
            tenant.to_string()
        }
    };
    match token(config, headers, scope)? {
        Some(token) if !token.tenants.is_empty() && !token.tenants.contains(&tenant) => Err(
            ServeError::Forbidden(format!("the token may not act for tenant `{tenant}`")),
        ),
        _ => Ok(tenant),
    }
}

/// Allows what changes the service for every tenant (the model in service): a write token
/// not limited to some tenants.
pub fn authorize_admin(config: &ServeConfig, headers: &HeaderMap) -> Result<()> {
    match token(config, headers, Scope::Write)? {
        Some(token) if !token.tenants.is_empty() => Err(ServeError::Forbidden(
            "the model in service is every tenant's: use a write token not limited to tenants"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// The tenants whose scores a `/metrics` scrape shows: the one named by `X-Scope-OrgID`, else
/// those the token may act for (`None`: every tenant).
pub fn visible_tenants(config: &ServeConfig, headers: &HeaderMap) -> Result<Option<Vec<String>>> {
    if headers.contains_key(TENANT_HEADER) {
        return authorize(config, headers, Scope::Read).map(|t| Some(vec![t]));
    }
    Ok(token(config, headers, Scope::Read)?
        .filter(|t| !t.tenants.is_empty())
        .map(|t| t.tenants.clone()))
}

/// The request's token with `scope` (`None` when the service has no tokens).
fn token<'a>(
    config: &'a ServeConfig,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Option<&'a Token>> {
    if config.tokens.is_empty() {
        return Ok(None);
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ServeError::Unauthorized("send `Authorization: Bearer TOKEN`".into()))?;
    let token = config
        .tokens
        .iter()
        .find(|t| constant_time_eq(t.token.as_bytes(), presented.trim().as_bytes()))
        .ok_or_else(|| {
            ServeError::Unauthorized("the bearer token is not one of this service's".into())
        })?;
    if !token.scopes.contains(&scope) {
        return Err(ServeError::Forbidden(format!(
            "the token has no `{}` scope",
            match scope {
                Scope::Read => "read",
                Scope::Write => "write",
            }
        )));
    }
    Ok(Some(token))
}

/// Compares without stopping at the first difference, so that timing tells nothing of a token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
