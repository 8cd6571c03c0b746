//! The Auth service: `auth/enable`, `auth/disable`, `auth/status` (etcd 3.5+),
//! `auth/authenticate`, `auth/user/*`, `auth/role/*`, and `authpb.Permission`.
//!
//! Errors seen: code 9 FailedPrecondition for "etcdserver: root user does not exist", "user
//! name already exists", "user name not found", "role name not found", "permission is not
//! granted to the role" (HTTP 412 on 3.4, HTTP 400 on 3.5); code 3 for a wrong password and
//! for "etcdserver: user name is empty" (no token); code 16 "etcdserver: invalid auth token";
//! code 7 "etcdserver: permission denied".

use crate::codec;
use crate::header::ResponseHeader;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

crate::empty_message! {
    /// Enables authentication (`auth/enable`); needs a `root` user with the `root` role.
    AuthEnableRequest
}

crate::header_response! {
    /// Answer to an [`AuthEnableRequest`].
    AuthEnableResponse
}

crate::empty_message! {
    /// Disables authentication (`auth/disable`).
    AuthDisableRequest
}

crate::header_response! {
    /// Answer to an [`AuthDisableRequest`].
    AuthDisableResponse
}

crate::empty_message! {
    /// Asks whether authentication is enabled (`auth/status`, etcd 3.5+; 3.4 answers HTTP 404
    /// with the plain-text body `Not Found`).
    AuthStatusRequest
}

/// Answer to an [`AuthStatusRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthStatusResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Authentication is enabled (absent when false).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub enabled: bool,
    /// Current revision of the auth store.
    #[serde(
        rename = "authRevision",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub auth_revision: u64,
}

/// Logs in (`auth/authenticate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticateRequest {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
}

/// Answer to an [`AuthenticateRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticateResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Token to send as the `Authorization` header (no "Bearer") on later calls.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
}

/// Options of a new user (`authpb.UserAddOptions`, etcd 3.4+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct UserAddOptions {
    /// The user has no password (only certificate authentication).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub no_password: bool,
}

/// Adds a user (`auth/user/add`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserAddRequest {
    /// User name; must not be empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// Options (etcd 3.4+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<UserAddOptions>,
    /// Password already hashed with bcrypt (etcd 3.5+), instead of `password`.
    #[serde(rename = "hashedPassword", skip_serializing_if = "String::is_empty")]
    pub hashed_password: String,
}

crate::header_response! {
    /// Answer to an [`AuthUserAddRequest`].
    AuthUserAddResponse
}

/// Gets a user's roles (`auth/user/get`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserGetRequest {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Answer to an [`AuthUserGetRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserGetResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The user's roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

crate::empty_message! {
    /// Lists all users (`auth/user/list`).
    AuthUserListRequest
}

/// Answer to an [`AuthUserListRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserListResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// User names, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

/// Deletes a user (`auth/user/delete`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserDeleteRequest {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

crate::header_response! {
    /// Answer to an [`AuthUserDeleteRequest`].
    AuthUserDeleteResponse
}

/// Changes a user's password (`auth/user/changepw`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserChangePasswordRequest {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// New password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// New password already hashed with bcrypt (etcd 3.5+), instead of `password`.
    #[serde(rename = "hashedPassword", skip_serializing_if = "String::is_empty")]
    pub hashed_password: String,
}

crate::header_response! {
    /// Answer to an [`AuthUserChangePasswordRequest`].
    AuthUserChangePasswordResponse
}

/// Grants a role to a user (`auth/user/grant`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserGrantRoleRequest {
    /// User name (this message says `user`, unlike the others).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Role name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
}

crate::header_response! {
    /// Answer to an [`AuthUserGrantRoleRequest`].
    AuthUserGrantRoleResponse
}

/// Revokes a role from a user (`auth/user/revoke`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthUserRevokeRoleRequest {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Role name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
}

crate::header_response! {
    /// Answer to an [`AuthUserRevokeRoleRequest`].
    AuthUserRevokeRoleResponse
}

/// Adds a role (`auth/role/add`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleAddRequest {
    /// Role name; must not be empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

crate::header_response! {
    /// Answer to an [`AuthRoleAddRequest`].
    AuthRoleAddResponse
}

/// Gets a role's permissions (`auth/role/get`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleGetRequest {
    /// Role name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// Answer to an [`AuthRoleGetRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleGetResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The role's permissions, sorted by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub perm: Vec<Permission>,
}

crate::empty_message! {
    /// Lists all roles (`auth/role/list`).
    AuthRoleListRequest
}

/// Answer to an [`AuthRoleListRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleListResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Role names, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Deletes a role (`auth/role/delete`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleDeleteRequest {
    /// Role name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
}

crate::header_response! {
    /// Answer to an [`AuthRoleDeleteRequest`].
    AuthRoleDeleteResponse
}

crate::wire_enum! {
    /// What a [`Permission`] allows (`authpb.Permission.Type`).
    pub enum PermissionType {
        /// Read (the default, so absent on the wire).
        Read = 0 => "READ",
        /// Write.
        Write = 1 => "WRITE",
        /// Read and write.
        ReadWrite = 2 => "READWRITE",
    }
}

/// Access to a key or range (`authpb.Permission`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    /// What is allowed.
    #[serde(rename = "permType", skip_serializing_if = "codec::is_default")]
    pub perm_type: PermissionType,
    /// The key, or first key of the range.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// End of the range `[key, range_end)`; empty for the single key.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub range_end: Bytes,
}

/// Grants a permission to a role (`auth/role/grant`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleGrantPermissionRequest {
    /// Role name (this message says `name`; the revoke message says `role`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The permission; always sent.
    pub perm: Permission,
}

crate::header_response! {
    /// Answer to an [`AuthRoleGrantPermissionRequest`].
    AuthRoleGrantPermissionResponse
}

/// Revokes a permission from a role (`auth/role/revoke`); key and range end must match the
/// granted permission exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRoleRevokePermissionRequest {
    /// Role name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Key of the permission.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// Range end of the permission.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub range_end: Bytes,
}

crate::header_response! {
    /// Answer to an [`AuthRoleRevokePermissionRequest`].
    AuthRoleRevokePermissionResponse
}
