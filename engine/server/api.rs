//! The route table: one list builds the router and the OpenAPI 3 document.

use super::{
    auth_api, batches, catalog, credentials_api, ecosystems_api, metrics, organizations_api,
    revocation_api, signers_api, users_api, Shared,
};
use crate::auth::Role;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

/// One endpoint.
pub struct Route {
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path, axum/OpenAPI template syntax (`/api/v1/batches/{batchId}`).
    pub path: &'static str,
    /// OpenAPI tag (the seed's section).
    pub tag: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Who may call it (and whether it needs `Authorization: Bearer <accessToken>`).
    pub access: Access,
    /// Request body media type, if any.
    pub request: Option<&'static str>,
    /// Response media type of success.
    pub response: &'static str,
    /// Query parameters (name, required).
    pub query: &'static [(&'static str, bool)],
    handler: fn() -> MethodRouter<Shared>,
}

/// Who may call an endpoint. The bearer-token check ([`super::auth_api::Caller`]) enforces it
/// for every authenticated route before the handler runs; handlers then narrow it further
/// (their own organization, their own rank).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// Any valid token: every role, API clients too.
    SignedIn,
    /// Any person's token, not an API client's (one's own password and contact details).
    People,
    /// Issuing and reading batches, profiles, authorities, devices, certificates: `USER` or
    /// `ADMIN` (seed 001 "role 'USER'", "'ADMIN' or 'USER'"). API clients hold `USER`.
    Issue,
    /// User and API client administration: `ADMIN`, and `ECO_ADMIN`, `ORG_ADMIN` within their
    /// organization.
    Admins,
    /// The installation: `ADMIN` only.
    Admin,
}

impl Access {
    /// The roles that pass; empty for [`Access::Public`], [`Access::SignedIn`] and
    /// [`Access::People`] (every role).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Access::Public | Access::SignedIn | Access::People => &[],
            Access::Issue => &[Role::User, Role::Admin],
            Access::Admins => &[Role::OrgAdmin, Role::EcoAdmin, Role::Admin],
            Access::Admin => &[Role::Admin],
        }
    }

    /// Whether `principal` may call an endpoint of this access (a token is checked already).
    pub fn allows(self, principal: &crate::auth::Principal) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::People => principal.client.is_none(),
            _ => self.roles().iter().any(|role| principal.has_role(*role)),
        }
    }
}

impl Route {
    /// Needs `Authorization: Bearer <accessToken>`.
    pub fn auth(&self) -> bool {
        self.access != Access::Public
    }
}

/// The route `method` `path` (axum's template, as `MatchedPath` gives it), if any.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|route| route.path == path && route.method.eq_ignore_ascii_case(method))
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain";
const FORM: &str = "application/x-www-form-urlencoded";

macro_rules! route {
    ($method:literal, $path:literal, $tag:literal, $summary:literal, access = $access:ident,
     request = $request:expr, response = $response:expr, query = $query:expr, $make:expr) => {
        Route {
            method: $method,
            path: $path,
            tag: $tag,
            summary: $summary,
            access: Access::$access,
            request: $request,
            response: $response,
            query: $query,
            handler: || $make,
        }
    };
}

/// Every endpoint of `certmill serve`.
pub const ROUTES: &[Route] = &[
    route!(
        "POST",
        "/auth/pwd",
        "Authentication",
        "Log in with username and password: accessToken (15 minutes) and refreshToken",
        access = Public,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(auth_api::login)
    ),
    route!(
        "POST",
        "/auth/refresh",
        "Authentication",
        "Exchange a refresh token (the body) for a new accessToken and the next refreshToken",
        access = Public,
        request = Some(TEXT),
        response = JSON,
        query = &[],
        post(auth_api::refresh)
    ),
    route!(
        "POST",
        "/auth/reset",
        "Authentication",
        "Mail a one-time password reset code to the person with this username or e-mail: true, or false within 15 minutes of the last request (503 without --smtp-url)",
        access = Public,
        request = None,
        response = JSON,
        query = &[("login", true)],
        post(auth_api::reset)
    ),
    route!(
        "POST",
        "/auth/validate-code",
        "Authentication",
        "Whether a password reset code is unused and unexpired: true or false",
        access = Public,
        request = None,
        response = JSON,
        query = &[("code", true)],
        post(auth_api::validate_code)
    ),
    route!(
        "POST",
        "/auth/update",
        "Authentication",
        "Set a new password with a reset code (spends the code, ends every session): 204",
        access = Public,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(auth_api::update_password)
    ),
    route!(
        "POST",
        "/auth/token",
        "Authentication",
        "API client credentials grant (RFC 6749 4.4, form or HTTP Basic): access_token, token_type, expires_in",
        access = Public,
        request = Some(FORM),
        response = JSON,
        query = &[],
        post(auth_api::token)
    ),
    route!(
        "GET",
        "/api/v1/profiles",
        "Profile",
        "Profiles the caller may use",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::profiles)
    ),
    route!(
        "GET",
        "/api/v1/profiles/{profileId}",
        "Profile",
        "A profile with its rawProfileConfig",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::profile)
    ),
    route!(
        "GET",
        "/api/v1/profiles/{profileId}/parameters",
        "Profile",
        "The parameters a batch of the profile takes",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::parameters)
    ),
    route!(
        "GET",
        "/api/v1/profiles/{profileId}/balance",
        "Profile",
        "Available balance of the caller's organization for the profile",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::profile_balance)
    ),
    route!(
        "GET",
        "/api/v1/profiles/{profileId}/dn",
        "Profile",
        "The subject DN template: attribute to value or source",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::dn)
    ),
    route!(
        "GET",
        "/api/v1/generators",
        "Generator",
        "Serial generators and their parameters",
        access = Issue,
        request = None,
        response = JSON,
        query = &[("profileId", false)],
        get(catalog::generators)
    ),
    route!(
        "GET",
        "/api/v1/authorities/allowed",
        "Authorities",
        "Authorities of the caller's organization",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::allowed)
    ),
    route!(
        "GET",
        "/api/v1/authorities/{authorityId}/balanceused/{organizationId}",
        "Authorities",
        "Used balance (of one user with ?userId=)",
        access = Issue,
        request = None,
        response = JSON,
        query = &[("userId", false)],
        get(catalog::balance_used)
    ),
    route!(
        "GET",
        "/api/v1/authorities/{authorityId}/balanceavailable/{organizationId}",
        "Authorities",
        "Available balance of the organization's authority",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::balance_available_for)
    ),
    route!(
        "GET",
        "/api/v1/authorities/{authorityId}/balanceavailable",
        "Authorities",
        "Available balance of the authority",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::balance_available)
    ),
    route!(
        "POST",
        "/api/v1/batches",
        "Batch",
        "Batch grid list: filter, paging, sorting",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[("profileId", false)],
        post(batches::list)
    ),
    route!(
        "PUT",
        "/api/v1/batches",
        "Batch",
        "Create a generator batch; returns at once, poll status",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(batches::create_generator)
    ),
    route!(
        "PUT",
        "/api/v1/batches/createSingleCertBatch",
        "Batch",
        "Create a single-certificate batch",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(batches::create_single)
    ),
    route!(
        "PUT",
        "/api/v1/batches/preview",
        "Batch",
        "The values the first device of a generator batch would get",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(batches::preview)
    ),
    route!(
        "POST",
        "/api/v1/batches/upload",
        "Batch",
        "Upload CSRs (PEM bundle or ZIP) as a batch",
        access = Issue,
        request = Some("multipart/form-data"),
        response = JSON,
        query = &[("profileId", true)],
        post(batches::upload_csr)
    ),
    route!(
        "POST",
        "/api/v1/batches/upload-csv",
        "Batch",
        "Upload a CSV of devices as a batch",
        access = Issue,
        request = Some("multipart/form-data"),
        response = JSON,
        query = &[("profileId", true)],
        post(batches::upload_csv)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}",
        "Batch",
        "A batch",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(batches::get_batch)
    ),
    route!(
        "DELETE",
        "/api/v1/batches/{batchId}",
        "Batch",
        "Reject a batch (body: the reason); its balance is restored",
        access = Issue,
        request = Some(TEXT),
        response = JSON,
        query = &[],
        delete(batches::reject)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}/status",
        "Batch",
        "Status text: Ready for download, Processing, Failed, Not Acceptable. Status: ...",
        access = Issue,
        request = None,
        response = TEXT,
        query = &[],
        get(batches::status)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}/processing_info",
        "Batch",
        "Live counts: active, success, failed",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(batches::processing_info)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}/auditLog",
        "Batch",
        "The batch's audit log",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(batches::audit_log)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}/devices/auditLog",
        "Batch",
        "The devices' audit log, from 1-based position, 1000 entries a page",
        access = Issue,
        request = None,
        response = JSON,
        query = &[("position", false)],
        get(batches::devices_audit_log)
    ),
    route!(
        "GET",
        "/api/v1/batches/{batchId}/download",
        "Download",
        "The batch ZIP; supports Range and ETag. Instead of the Authorization header, ?ticket= may carry a download ticket for this batch",
        access = Issue,
        request = None,
        response = "application/zip",
        query = &[("ticket", false)],
        get(batches::download)
    ),
    route!(
        "POST",
        "/api/v1/batches/{batchId}/download-link",
        "Download",
        "A link to the batch ZIP that needs no Authorization header, valid 60 s: {url, expiresIn}",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        post(batches::download_link)
    ),
    route!(
        "POST",
        "/api/v1/certificates/find",
        "Certificate",
        "Find certificates by commonName and/or serialNumber",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(catalog::find_certificates)
    ),
    route!(
        "POST",
        "/api/v1/certificates/revoke",
        "Certificate",
        "Revoke the certificates of devices (reasonCode, deviceIds); all or none",
        access = Issue,
        request = Some(JSON),
        response = TEXT,
        query = &[],
        post(revocation_api::revoke_devices)
    ),
    route!(
        "POST",
        "/api/v1/certificates/{profileId}/revoke",
        "Certificate",
        "Revoke one certificate of the profile by serialNumber (reasonCode, serialNumber)",
        access = Issue,
        request = Some(JSON),
        response = TEXT,
        query = &[],
        post(revocation_api::revoke_serial)
    ),
    route!(
        "POST",
        "/api/v1/batches/{batchId}/revoke",
        "Batch",
        "Revoke every certificate of a downloaded batch (reasonCode): Processing Revoke, then Revoked",
        access = Issue,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(revocation_api::revoke_batch)
    ),
    route!(
        "GET",
        "/api/v1/organizations",
        "Organization",
        "Organizations, paged (page from 0, size up to 50) and filtered (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[("page", false), ("size", false), ("filter", false)],
        get(organizations_api::list)
    ),
    route!(
        "POST",
        "/api/v1/organizations",
        "Organization",
        "Create an organization; answers its id (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(organizations_api::create)
    ),
    route!(
        "PUT",
        "/api/v1/organizations",
        "Organization",
        "Update an organization's details; its name stays (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(organizations_api::update)
    ),
    route!(
        "GET",
        "/api/v1/organizations/user",
        "Organization",
        "The caller's organization",
        access = SignedIn,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::mine)
    ),
    route!(
        "GET",
        "/api/v1/organizations/select/items",
        "Organization",
        "Organizations as {id, name} items (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::select_items)
    ),
    route!(
        "GET",
        "/api/v1/organizations/check_organization",
        "Organization",
        "Whether an organization has this name: true or false (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[("name", true)],
        get(organizations_api::check)
    ),
    route!(
        "GET",
        "/api/v1/organizations/{organizationId}",
        "Organization",
        "An organization with its authorities (ADMIN any, others their own)",
        access = SignedIn,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::get)
    ),
    route!(
        "DELETE",
        "/api/v1/organizations/{organizationId}",
        "Organization",
        "Delete an organization without users, balances or batches still issuing (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        delete(organizations_api::delete)
    ),
    route!(
        "GET",
        "/api/v1/organizations/{organizationId}/all_authorities",
        "Organization",
        "An organization's authorities (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::authorities)
    ),
    route!(
        "POST",
        "/api/v1/organizations/{organizationId}/authority",
        "Organization",
        "Create the organization's authority for a profile (balance), or top it up (addedBalance) (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(organizations_api::upsert_authority)
    ),
    route!(
        "PUT",
        "/api/v1/organizations/{organizationId}/authorities/{authorityId}",
        "Organization",
        "Set an authority's total balance (never below used and reserved) and enabled flag (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(organizations_api::set_authority)
    ),
    route!(
        "GET",
        "/api/v1/organizations/{organizationId}/authorities/{authorityId}/events",
        "Organization",
        "What administrators did to an authority (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::authority_events)
    ),
    route!(
        "PUT",
        "/api/v1/organizations/{organizationId}/authority/{authorityId}",
        "Organization",
        "Give the organization an authority for the profile of another authority, balance 0; idempotent (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        put(organizations_api::add_authority)
    ),
    route!(
        "DELETE",
        "/api/v1/organizations/{organizationId}/authority/{authorityId}",
        "Organization",
        "Remove an authority from its organization once only used units are left on it (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        delete(organizations_api::remove_authority)
    ),
    route!(
        "GET",
        "/api/v1/organizations/profile_parameters/{organizationId}",
        "Organization",
        "The organization's parameters (organizationParameters with ORGANIZATION, MANUFACTURER_ID) (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(organizations_api::profile_parameters)
    ),
    route!(
        "GET",
        "/api/v1/profiles/organization_parameters",
        "Profile",
        "The batch-wide profile parameters an organization may fix (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::organization_parameters)
    ),
    route!(
        "GET",
        "/api/v1/users/profiles",
        "User",
        "The profile of an authority the caller may order with (ADMIN or USER)",
        access = Issue,
        request = None,
        response = JSON,
        query = &[("authorityId", true)],
        get(catalog::user_profiles)
    ),
    route!(
        "GET",
        "/api/v1/ecosystems/statistics",
        "EcoSystem",
        "An ecosystem's capacity, balance, used units and devices ordered and issued per day (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[("ecosystemId", false)],
        get(ecosystems_api::statistics)
    ),
    route!(
        "POST",
        "/api/v1/ecosystems/users",
        "EcoSystem",
        "The administrators (ADMIN, ECO_ADMIN) matching searchLine (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(ecosystems_api::administrators)
    ),
    route!(
        "GET",
        "/api/v1/ecosystems/ecosystem",
        "EcoSystem",
        "An ecosystem (organization): name, description, authorities, capacity (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[("ecosystemId", false)],
        get(ecosystems_api::ecosystem)
    ),
    route!(
        "GET",
        "/api/v1/ecosystems/ecosystem/balance",
        "EcoSystem",
        "Units available on an ecosystem's enabled authorities (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[("ecosystemId", false)],
        get(ecosystems_api::balance)
    ),
    route!(
        "GET",
        "/api/v1/ecosystems/users/{userId}",
        "EcoSystem",
        "An administrator (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(ecosystems_api::read_administrator)
    ),
    route!(
        "PUT",
        "/api/v1/ecosystems/users/{userId}",
        "EcoSystem",
        "Update an administrator's contact details and privileges (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(ecosystems_api::update_administrator)
    ),
    route!(
        "GET",
        "/api/v1/issuers",
        "Certificate Authority",
        "Issuers (seed 004 tenants) with their current signer and the profiles naming them (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(signers_api::list_issuers)
    ),
    route!(
        "GET",
        "/api/v1/issuers/{issuer}/signers",
        "Certificate Authority",
        "List the issuer's signers, oldest first, paged (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[
            ("page", false),
            ("page_size", false),
            ("state", false),
            ("filter", false),
        ],
        get(signers_api::list_signers)
    ),
    route!(
        "POST",
        "/api/v1/issuers/{issuer}/signers",
        "Certificate Authority",
        "Create the issuer's first signer, or rotate: a new ACTIVE signer, the previous RETIRED (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(signers_api::create)
    ),
    route!(
        "GET",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}",
        "Certificate Authority",
        "A signer (id or current) with its certificate (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(signers_api::get)
    ),
    route!(
        "DELETE",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}",
        "Certificate Authority",
        "Delete a signer that is not ACTIVE once nothing it issued is still valid (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        delete(signers_api::delete)
    ),
    route!(
        "GET",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/chain",
        "Certificate Authority",
        "The signer's certificate chain up to the root, PEM (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(signers_api::chain)
    ),
    route!(
        "POST",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/renew",
        "Certificate Authority",
        "Renew: the same key in a new certificate (or a CSR for an external root) (ADMIN)",
        access = Admin,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(signers_api::renew)
    ),
    route!(
        "POST",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/revoke",
        "Certificate Authority",
        "Revoke a signer: it signs nothing more and is no longer served (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        post(signers_api::revoke)
    ),
    route!(
        "GET",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/csr",
        "Certificate Authority",
        "The CSR a signer of an external root waits with, PEM (ADMIN)",
        access = Admin,
        request = None,
        response = "application/pkcs10",
        query = &[],
        get(signers_api::csr)
    ),
    route!(
        "PUT",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/certificate",
        "Certificate Authority",
        "Install the external root's certificate for the signer's CSR, PEM then chain (ADMIN)",
        access = Admin,
        request = Some(TEXT),
        response = JSON,
        query = &[],
        put(signers_api::install)
    ),
    route!(
        "GET",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/events",
        "Certificate Authority",
        "The signer's audit log (ADMIN)",
        access = Admin,
        request = None,
        response = JSON,
        query = &[],
        get(signers_api::events)
    ),
    route!(
        "GET",
        "/crl/{name}",
        "Revocation",
        "The CA's current CRL (DER), at the name the profiles' distribution points give",
        access = Public,
        request = None,
        response = "application/pkix-crl",
        query = &[],
        get(revocation_api::crl)
    ),
    route!(
        "POST",
        "/ocsp",
        "Revocation",
        "OCSP (RFC 6960, RFC 5019 profile): the DER request as the body",
        access = Public,
        request = Some("application/ocsp-request"),
        response = "application/ocsp-response",
        query = &[],
        post(revocation_api::ocsp_post)
    ),
    route!(
        "GET",
        "/ocsp/{*request}",
        "Revocation",
        "OCSP by GET: the url-encoded base64 of the DER request (RFC 6960 A.1)",
        access = Public,
        request = None,
        response = "application/ocsp-response",
        query = &[],
        get(revocation_api::ocsp_get)
    ),
    route!(
        "GET",
        "/api/v1/devices",
        "Device",
        "Devices ordered and issued for the caller's organization",
        access = Issue,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::devices)
    ),
    route!(
        "GET",
        "/api/v1/users",
        "User",
        "The current user",
        access = SignedIn,
        request = None,
        response = JSON,
        query = &[],
        get(catalog::current_user)
    ),
    route!(
        "PUT",
        "/api/v1/users",
        "User",
        "Create a user: contact details, organizationId, credentials, userPrivileges; answers its id (ADMIN)",
        access = Admins,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(users_api::create)
    ),
    route!(
        "GET",
        "/api/v1/users/{userId}",
        "User",
        "A user (ADMIN)",
        access = Admins,
        request = None,
        response = JSON,
        query = &[("organizationId", false)],
        get(users_api::get)
    ),
    route!(
        "PUT",
        "/api/v1/users/{userId}",
        "User",
        "Update a user's contact details and, when given, roles and accessible profiles (ADMIN)",
        access = Admins,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(users_api::update)
    ),
    route!(
        "POST",
        "/api/v1/users/organizations/{organizationId}",
        "User",
        "An organization's users, by role and searchLine (ADMIN)",
        access = Admins,
        request = Some(JSON),
        response = JSON,
        query = &[("role", false), ("filter", false)],
        post(users_api::of_organization)
    ),
    route!(
        "PUT",
        "/api/v1/users/current",
        "User",
        "Update one's own contact details",
        access = People,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(users_api::update_current)
    ),
    route!(
        "PUT",
        "/api/v1/users/update_email",
        "User",
        "Update one's own e-mail address",
        access = People,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(users_api::update_email)
    ),
    route!(
        "GET",
        "/api/v1/users/check_email",
        "User",
        "Whether a user has this e-mail address: true or false (ADMIN)",
        access = Admins,
        request = None,
        response = JSON,
        query = &[("email", true)],
        get(users_api::check_email)
    ),
    route!(
        "GET",
        "/api/v1/users/remove_user",
        "User",
        "Remove a user and end their sessions (ADMIN; not oneself)",
        access = Admins,
        request = None,
        response = JSON,
        query = &[("userId", true)],
        get(users_api::remove)
    ),
    route!(
        "PUT",
        "/api/v1/users/credentials",
        "User",
        "Change one's own password: true, or false when currentPassword is wrong",
        access = People,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(users_api::change_password)
    ),
    route!(
        "GET",
        "/api/v1/users/check_user",
        "User",
        "Whether a user has this login name: true or false (ADMIN)",
        access = Admins,
        request = None,
        response = JSON,
        query = &[("username", true)],
        get(users_api::check_user)
    ),
    route!(
        "POST",
        "/api/v1/credentials",
        "Credentials",
        "Create an API client: id, clientId and clientSecret (shown once) (ADMIN; ORG_ADMIN, ECO_ADMIN in their organization)",
        access = Admins,
        request = Some(JSON),
        response = JSON,
        query = &[],
        post(credentials_api::create)
    ),
    route!(
        "GET",
        "/api/v1/credentials",
        "Credentials",
        "The API clients the caller administers: {items, count}, with filter=",
        access = Admins,
        request = None,
        response = JSON,
        query = &[("filter", false)],
        get(credentials_api::list)
    ),
    route!(
        "GET",
        "/api/v1/credentials/{id}",
        "Credentials",
        "One API client",
        access = Admins,
        request = None,
        response = JSON,
        query = &[],
        get(credentials_api::get)
    ),
    route!(
        "PUT",
        "/api/v1/credentials/{id}",
        "Credentials",
        "Rename, re-scope (accessibleProfiles), lock or unlock an API client",
        access = Admins,
        request = Some(JSON),
        response = JSON,
        query = &[],
        put(credentials_api::update)
    ),
    route!(
        "DELETE",
        "/api/v1/credentials/{id}",
        "Credentials",
        "Delete an API client: 204",
        access = Admins,
        request = None,
        response = JSON,
        query = &[],
        delete(credentials_api::delete)
    ),
    route!(
        "POST",
        "/api/v1/credentials/{id}/reset",
        "Credentials",
        "A new clientSecret (shown once); the old one and its tokens stop working",
        access = Admins,
        request = None,
        response = JSON,
        query = &[],
        post(credentials_api::reset)
    ),
    route!(
        "GET",
        "/api/v1/credentials/{id}/events",
        "Credentials",
        "What administrators did to an API client (created, updated, locked, unlocked, secret reset, deleted)",
        access = Admins,
        request = None,
        response = JSON,
        query = &[],
        get(credentials_api::events)
    ),
    route!(
        "GET",
        "/api/v1/openapi.json",
        "Meta",
        "This OpenAPI document",
        access = Public,
        request = None,
        response = JSON,
        query = &[],
        get(openapi_json)
    ),
    route!(
        "GET",
        "/healthz",
        "Meta",
        "Liveness: ok when the store answers",
        access = Public,
        request = None,
        response = TEXT,
        query = &[],
        get(metrics::healthz)
    ),
    route!(
        "GET",
        "/metrics",
        "Meta",
        "Prometheus metrics",
        access = Public,
        request = None,
        response = TEXT,
        query = &[],
        get(metrics::metrics)
    ),
];

/// The router of [`ROUTES`]; unknown paths are 404 in the API's error shape.
pub fn router(state: Shared) -> Router {
    let mut router: Router<Shared> = Router::new();
    for (path, routes) in group_by_path() {
        let mut method_router: MethodRouter<Shared> = MethodRouter::new();
        for route in routes {
            method_router = method_router.merge((route.handler)());
        }
        router = router.route(path, method_router);
    }
    router
        .merge(super::console::router())
        .fallback(|| async { super::ApiError::not_found("no such endpoint") })
        .with_state(state)
}

fn group_by_path() -> Vec<(&'static str, Vec<&'static Route>)> {
    let mut groups: Vec<(&'static str, Vec<&'static Route>)> = Vec::new();
    for route in ROUTES {
        match groups.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, routes)) => routes.push(route),
            None => groups.push((route.path, vec![route])),
        }
    }
    groups
}

/// The OpenAPI 3.0 document of [`ROUTES`].
pub fn openapi() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (path, routes) in group_by_path() {
        let mut item = serde_json::Map::new();
        // axum's catch-all `{*name}` is an ordinary path parameter to OpenAPI.
        let path = path.replace("{*", "{");
        let path = path.as_str();
        for route in routes {
            let mut parameters: Vec<serde_json::Value> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| {
                    serde_json::json!({"name": name, "in": "path", "required": true,
                                       "schema": {"type": if name.ends_with("Id") { "integer" } else { "string" }}})
                })
                .collect();
            for (name, required) in route.query {
                parameters.push(
                    serde_json::json!({"name": name, "in": "query", "required": required,
                                                    "schema": {"type": "string"}}),
                );
            }
            let mut operation = serde_json::json!({
                "tags": [route.tag],
                "summary": route.summary,
                "operationId": format!("{} {}", route.method, route.path),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "OK", "content": {route.response: {}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                },
            });
            if let Some(media) = route.request {
                operation["requestBody"] =
                    serde_json::json!({"required": true, "content": {media: {}}});
            }
            if route.auth() {
                operation["security"] = serde_json::json!([{"bearer": []}]);
                operation["responses"]["403"] =
                    serde_json::json!({"$ref": "#/components/responses/Error"});
                let roles: Vec<&str> = route.access.roles().iter().map(|r| r.as_str()).collect();
                operation["x-roles"] = serde_json::json!(roles);
            }
            item.insert(route.method.to_ascii_lowercase(), operation);
        }
        paths.insert(path.to_owned(), serde_json::Value::Object(item));
    }
    serde_json::json!({
        "openapi": "3.0.3",
        "info": {
            "title": "certmill",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Batch X.509 certificate issuance: seed 001's /auth and /api/v1 endpoints.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
                "required": ["error", "error_description"],
            }}}}},
        },
    })
}

async fn openapi_json() -> axum::Json<serde_json::Value> {
    axum::Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document_once() {
        let doc = openapi();
        let mut count = 0;
        for route in ROUTES {
            let path = route.path.replace("{*", "{");
            let operation = &doc["paths"][path.as_str()][route.method.to_ascii_lowercase()];
            assert!(operation.is_object(), "{} {}", route.method, route.path);
            assert_eq!(
                operation["security"].is_array(),
                route.auth(),
                "{}",
                route.path
            );
            count += 1;
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, count);
        assert_eq!(
            doc["paths"]["/api/v1/batches/{batchId}"]["delete"]["parameters"][0]["name"],
            "batchId"
        );
    }

    #[test]
    fn no_route_is_declared_twice() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
