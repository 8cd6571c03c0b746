//! Auth administration: enabling auth, users, roles and their permissions.
//!
//! Every method needs a client allowed to administer auth (the `root` role once auth is on).
//! Keys in permissions go through the client's namespace like every other key: a
//! permission granted through `client.with_namespace("app/")` on the prefix `"cfg/"` covers
//! `app/cfg/...`, and [`Client::role_get`] hands it back as `"cfg/"`.
//!
//! ```no_run
//! # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
//! client.role_add("reader").await?;
//! client.role_grant_permission("reader").prefix("app/").read().await?;
//! client.user_add("alice").password("secret").await?;
//! client.user_grant_role("alice", "reader").await?;
//! let role = client.role_get("reader").await?;
//! assert_eq!(role.permissions()[0].key(), b"app/");
//! # Ok(()) }
//! ```

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::{IntoBytes, KeyRange, Namespace};
use crate::maintenance::is_missing_route;
use crate::request::{check_key, into_future};
use crate::types::Header;
use bytes::Bytes;
use etcd_wire::auth as wire;
pub use etcd_wire::auth::PermissionType;

/// Whether auth is enabled, from [`Client::auth_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStatus {
    header: Header,
    enabled: bool,
    auth_revision: u64,
}

impl AuthStatus {
    /// True when the server checks credentials and permissions.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// The revision of the auth store (it grows with every change to users and roles).
    pub fn auth_revision(&self) -> u64 {
        self.auth_revision
    }
    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// A user and its roles, from [`Client::user_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    roles: Vec<String>,
}

impl User {
    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The roles granted to the user, sorted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// True when the user has this role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// A role and its permissions, from [`Client::role_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    name: String,
    permissions: Vec<Permission>,
}

impl Role {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The role's permissions, sorted by key.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }
}

/// Access to one key or a range of keys, granted to a role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    key: Bytes,
    range_end: Bytes,
    perm_type: PermissionType,
}

impl Permission {
    fn from_wire(p: wire::Permission, ns: &Namespace) -> Permission {
        let range_end = if p.range_end.is_empty() {
            p.range_end
        } else if p.range_end == ns.all_end() {
            // "Every key from `key` on" (inside the namespace).
            Bytes::from_static(b"\0")
        } else {
            ns.strip(p.range_end)
        };
        let key = if p.key.as_ref() == b"\0" && ns.is_empty() {
            Bytes::new()
        } else {
            ns.strip(p.key)
        };
        Permission {
            key,
            range_end,
            perm_type: p.perm_type,
        }
    }

    /// The key, or the first key of the range (without the client's namespace; empty with a
    /// range end of `"\0"` for every key).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The end of the range `[key, range_end)`: empty for the single key `key`, `"\0"` for
    /// every key from `key` on.
    pub fn range_end(&self) -> &[u8] {
        &self.range_end
    }

    /// What the permission allows.
    pub fn perm_type(&self) -> PermissionType {
        self.perm_type
    }

    /// True when it covers more than one key.
    pub fn is_range(&self) -> bool {
        !self.range_end.is_empty()
    }

    /// True when it allows reads.
    pub fn can_read(&self) -> bool {
        matches!(
            self.perm_type,
            PermissionType::Read | PermissionType::ReadWrite
        )
    }

    /// True when it allows writes.
    pub fn can_write(&self) -> bool {
        matches!(
            self.perm_type,
            PermissionType::Write | PermissionType::ReadWrite
        )
    }
}

/// Names "user name not found", "role name not found", "role is not granted to the user"
/// and "permission is not granted to the role" (code 9) as [`Error::NotFound`].
fn not_found(e: Error) -> Error {
    match &e {
        Error::Server(cause)
            if cause.status().is_some_and(|s| {
                s.message.contains("not found") || s.message.contains("not granted")
            }) =>
        {
            Error::NotFound(cause.clone())
        }
        _ => e,
    }
}

/// The keys a permission covers, before the namespace is applied.
#[derive(Debug, Clone, Default)]
struct PermKeys {
    key: Option<Bytes>,
    range: KeyRange,
}

impl PermKeys {
    fn set(&mut self, key: Bytes, range: KeyRange) {
        self.key = Some(key);
        self.range = range;
    }

    fn to_wire(&self, ns: &Namespace) -> Result<(Bytes, Bytes)> {
        let Some(key) = &self.key else {
            return Err(Error::invalid(
                "no key given: call key(), prefix(), range() or from_key()",
            ));
        };
        check_key(key, &self.range)?;
        Ok(ns.range(key, &self.range))
    }
}

/// Adds `key()`, `prefix()`, `range()`, `from_key()` and `all_keys()` to a permission builder.
macro_rules! perm_key_setters {
    ($what:literal) => {
        #[doc = concat!($what, " exactly this key.")]
        pub fn key(mut self, key: impl IntoBytes) -> Self {
            self.keys.set(key.into_bytes(), KeyRange::Single);
            self
        }

        #[doc = concat!($what, " every key starting with `prefix` (an empty prefix: every key).")]
        pub fn prefix(mut self, prefix: impl IntoBytes) -> Self {
            self.keys.set(prefix.into_bytes(), KeyRange::Prefix);
            self
        }

        #[doc = concat!($what, " the keys in `[key, end)`.")]
        pub fn range(mut self, key: impl IntoBytes, end: impl IntoBytes) -> Self {
            self.keys
                .set(key.into_bytes(), KeyRange::End(end.into_bytes()));
            self
        }

        #[doc = concat!($what, " every key greater than or equal to `key`.")]
        pub fn from_key(mut self, key: impl IntoBytes) -> Self {
            self.keys.set(key.into_bytes(), KeyRange::FromKey);
            self
        }

        #[doc = concat!($what, " every key (of the client's namespace, if it has one).")]
        pub fn all_keys(mut self) -> Self {
            self.keys.set(Bytes::new(), KeyRange::Prefix);
            self
        }
    };
}

/// Grants a role access to a key or a range: `client.role_grant_permission(role)`, then the
/// keys, then the type (read when not given), then `.await`.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// client.role_grant_permission("reader").prefix("app/").read().await?;
/// client.role_grant_permission("writer").range("a", "m").read_write().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct GrantPermission<'a> {
    client: &'a Client,
    role: String,
    keys: PermKeys,
    perm_type: PermissionType,
}

impl<'a> GrantPermission<'a> {
    perm_key_setters!("Covers");

    /// Allows reads (the default).
    pub fn read(mut self) -> Self {
        self.perm_type = PermissionType::Read;
        self
    }

    /// Allows writes (puts and deletes), not reads.
    pub fn write(mut self) -> Self {
        self.perm_type = PermissionType::Write;
        self
    }

    /// Allows reads and writes.
    pub fn read_write(mut self) -> Self {
        self.perm_type = PermissionType::ReadWrite;
        self
    }

    /// Allows what `perm_type` says.
    pub fn perm_type(mut self, perm_type: PermissionType) -> Self {
        self.perm_type = perm_type;
        self
    }

    /// Sends the request. Fails with [`Error::InvalidInput`] when no key was given.
    pub async fn send(self) -> Result<()> {
        let (key, range_end) = self.keys.to_wire(&self.client.namespace)?;
        let request = wire::AuthRoleGrantPermissionRequest {
            name: self.role,
            perm: wire::Permission {
                perm_type: self.perm_type,
                key,
                range_end,
            },
        };
        let _: wire::AuthRoleGrantPermissionResponse =
            self.client.call(&request).await.map_err(not_found)?;
        Ok(())
    }
}

into_future!(GrantPermission, ());

/// Takes a permission from a role: `client.role_revoke_permission(role)`, then the keys
/// exactly as granted, then `.await`. A permission that was not granted with these very
/// keys fails with [`Error::NotFound`].
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct RevokePermission<'a> {
    client: &'a Client,
    role: String,
    keys: PermKeys,
}

impl<'a> RevokePermission<'a> {
    perm_key_setters!("Revokes the permission on");

    /// Sends the request. Fails with [`Error::InvalidInput`] when no key was given.
    pub async fn send(self) -> Result<()> {
        let (key, range_end) = self.keys.to_wire(&self.client.namespace)?;
        let request = wire::AuthRoleRevokePermissionRequest {
            role: self.role,
            key,
            range_end,
        };
        let _: wire::AuthRoleRevokePermissionResponse =
            self.client.call(&request).await.map_err(not_found)?;
        Ok(())
    }
}

into_future!(RevokePermission, ());

/// Adds a user: `client.user_add(name)`, then `.password(p)` (or `.no_password()`), then
/// `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct UserAdd<'a> {
    client: &'a Client,
    request: wire::AuthUserAddRequest,
}

impl<'a> UserAdd<'a> {
    /// The user's password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.request.password = password.into();
        self
    }

    /// The user's password, already hashed with bcrypt (etcd 3.5+; older servers ignore it
    /// and refuse the user for lack of a password).
    pub fn hashed_password(mut self, hash: impl Into<String>) -> Self {
        self.request.hashed_password = hash.into();
        self
    }

    /// The user has no password and can only authenticate with a TLS client certificate
    /// (etcd 3.4+).
    pub fn no_password(mut self) -> Self {
        self.request.options = Some(wire::UserAddOptions { no_password: true });
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<()> {
        if self.request.name.is_empty() {
            return Err(Error::invalid("the user name is empty"));
        }
        let _: wire::AuthUserAddResponse = self.client.call(&self.request).await?;
        Ok(())
    }
}

into_future!(UserAdd, ());

impl Client {
    /// Enables authentication. Needs a `root` user holding the `root` role; from then on
    /// every request needs credentials (see
    /// [`ClientBuilder::credentials`](crate::ClientBuilder::credentials)).
    pub async fn auth_enable(&self) -> Result<()> {
        let _: wire::AuthEnableResponse = self.call(&wire::AuthEnableRequest::default()).await?;
        Ok(())
    }

    /// Disables authentication (a `root` user's client must ask, while it is on).
    pub async fn auth_disable(&self) -> Result<()> {
        let _: wire::AuthDisableResponse = self.call(&wire::AuthDisableRequest::default()).await?;
        Ok(())
    }

    /// Whether authentication is enabled (etcd 3.5+). etcd 3.4's gateway has no such call:
    /// there it fails with [`Error::Unsupported`].
    pub async fn auth_status(&self) -> Result<AuthStatus> {
        match self.call(&wire::AuthStatusRequest::default()).await {
            Ok(s) => Ok(AuthStatus {
                header: s.header.into(),
                enabled: s.enabled,
                auth_revision: s.auth_revision,
            }),
            Err(e) if is_missing_route(&e) => Err(Error::Unsupported(format!(
                "auth status needs etcd 3.5 or later (the gateway has no auth/status: {e})"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Adds a user; give it a password (or none) on the builder.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// client.user_add("alice").password("secret").await?;
    /// # Ok(()) }
    /// ```
    pub fn user_add(&self, name: impl Into<String>) -> UserAdd<'_> {
        UserAdd {
            client: self,
            request: wire::AuthUserAddRequest {
                name: name.into(),
                ..Default::default()
            },
        }
    }

    /// A user and its roles; an unknown user fails with [`Error::NotFound`].
    pub async fn user_get(&self, name: impl Into<String>) -> Result<User> {
        let name = name.into();
        let request = wire::AuthUserGetRequest { name: name.clone() };
        let r: wire::AuthUserGetResponse = self.call(&request).await.map_err(not_found)?;
        Ok(User {
            name,
            roles: r.roles,
        })
    }

    /// The names of all users, sorted.
    pub async fn user_list(&self) -> Result<Vec<String>> {
        let r: wire::AuthUserListResponse =
            self.call(&wire::AuthUserListRequest::default()).await?;
        Ok(r.users)
    }

    /// Deletes a user; an unknown user fails with [`Error::NotFound`].
    pub async fn user_delete(&self, name: impl Into<String>) -> Result<()> {
        let request = wire::AuthUserDeleteRequest { name: name.into() };
        let _: wire::AuthUserDeleteResponse = self.call(&request).await.map_err(not_found)?;
        Ok(())
    }

    /// Changes a user's password; an unknown user fails with [`Error::NotFound`].
    pub async fn user_change_password(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<()> {
        let request = wire::AuthUserChangePasswordRequest {
            name: name.into(),
            password: password.into(),
            ..Default::default()
        };
        let _: wire::AuthUserChangePasswordResponse =
            self.call(&request).await.map_err(not_found)?;
        Ok(())
    }

    /// Grants a role to a user; an unknown user or role fails with [`Error::NotFound`].
    pub async fn user_grant_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<()> {
        let request = wire::AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        };
        let _: wire::AuthUserGrantRoleResponse = self.call(&request).await.map_err(not_found)?;
        Ok(())
    }

    /// Takes a role from a user; a role the user does not have fails with
    /// [`Error::NotFound`].
    pub async fn user_revoke_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<()> {
        let request = wire::AuthUserRevokeRoleRequest {
            name: user.into(),
            role: role.into(),
        };
        let _: wire::AuthUserRevokeRoleResponse = self.call(&request).await.map_err(not_found)?;
        Ok(())
    }

    /// Adds a role, with no permissions.
    pub async fn role_add(&self, name: impl Into<String>) -> Result<()> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::invalid("the role name is empty"));
        }
        let _: wire::AuthRoleAddResponse = self.call(&wire::AuthRoleAddRequest { name }).await?;
        Ok(())
    }

    /// A role and its permissions (keys without the client's namespace); an unknown role
    /// fails with [`Error::NotFound`].
    pub async fn role_get(&self, name: impl Into<String>) -> Result<Role> {
        let name = name.into();
        let request = wire::AuthRoleGetRequest { role: name.clone() };
        let r: wire::AuthRoleGetResponse = self.call(&request).await.map_err(not_found)?;
        Ok(Role {
            name,
            permissions: r
                .perm
                .into_iter()
                .map(|p| Permission::from_wire(p, &self.namespace))
                .collect(),
        })
    }

    /// The names of all roles, sorted.
    pub async fn role_list(&self) -> Result<Vec<String>> {
        let r: wire::AuthRoleListResponse =
            self.call(&wire::AuthRoleListRequest::default()).await?;
        Ok(r.roles)
    }

    /// Deletes a role (and takes it from every user); an unknown role fails with
    /// [`Error::NotFound`].
    pub async fn role_delete(&self, name: impl Into<String>) -> Result<()> {
        let request = wire::AuthRoleDeleteRequest { role: name.into() };
        let _: wire::AuthRoleDeleteResponse = self.call(&request).await.map_err(not_found)?;
        Ok(())
    }

    /// Grants a role access to keys; choose them and the access on the builder.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// client.role_grant_permission("reader").prefix("app/").read().await?;
    /// # Ok(()) }
    /// ```
    pub fn role_grant_permission(&self, role: impl Into<String>) -> GrantPermission<'_> {
        GrantPermission {
            client: self,
            role: role.into(),
            keys: PermKeys::default(),
            perm_type: PermissionType::Read,
        }
    }

    /// Takes a permission from a role; name its keys on the builder exactly as granted.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// client.role_revoke_permission("reader").prefix("app/").await?;
    /// # Ok(()) }
    /// ```
    pub fn role_revoke_permission(&self, role: impl Into<String>) -> RevokePermission<'_> {
        RevokePermission {
            client: self,
            role: role.into(),
            keys: PermKeys::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_perm(key: &'static [u8], end: &'static [u8]) -> wire::Permission {
        wire::Permission {
            perm_type: PermissionType::Write,
            key: Bytes::from_static(key),
            range_end: Bytes::from_static(end),
        }
    }

    #[test]
    fn permissions_leave_the_namespace() {
        let ns = Namespace(Bytes::from_static(b"app/"));
        let p = Permission::from_wire(wire_perm(b"app/cfg/", b"app/cfg0"), &ns);
        assert_eq!((p.key(), p.range_end()), (&b"cfg/"[..], &b"cfg0"[..]));
        assert!(p.can_write() && !p.can_read() && p.is_range());
        let p = Permission::from_wire(wire_perm(b"app/k", b"app0"), &ns);
        assert_eq!((p.key(), p.range_end()), (&b"k"[..], &b"\0"[..]));
        let p = Permission::from_wire(wire_perm(b"app/k", b""), &ns);
        assert_eq!((p.key(), p.range_end()), (&b"k"[..], &b""[..]));
        let none = Namespace::default();
        let p = Permission::from_wire(wire_perm(b"\0", b"\0"), &none);
        assert_eq!((p.key(), p.range_end()), (&b""[..], &b"\0"[..]));
    }

    #[test]
    fn permission_keys_enter_the_namespace() {
        let ns = Namespace(Bytes::from_static(b"app/"));
        let mut keys = PermKeys::default();
        assert!(keys.to_wire(&ns).is_err());
        keys.set(Bytes::from_static(b"cfg/"), KeyRange::Prefix);
        assert_eq!(
            keys.to_wire(&ns).ok(),
            Some((
                Bytes::from_static(b"app/cfg/"),
                Bytes::from_static(b"app/cfg0")
            ))
        );
        keys.set(Bytes::new(), KeyRange::Prefix);
        assert_eq!(
            keys.to_wire(&ns).ok(),
            Some((Bytes::from_static(b"app/"), Bytes::from_static(b"app0")))
        );
        keys.set(Bytes::new(), KeyRange::Single);
        assert!(keys.to_wire(&ns).is_err());
    }
}
