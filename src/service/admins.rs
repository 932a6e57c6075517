//! Administrator accounts: create with a one-time password, reset, disable and enable, change
//! role; the audit log. The role check itself sits at the edges (API and console extractors);
//! here are the rules that keep the hub administrable: nobody disables themselves, and the last
//! enabled administrator keeps that role.

use super::auth::{AuthService, hash_password, random_text};
use crate::domain::admin::{Admin, AdminAccount, AuditEvent, AuditRecord, Principal, Role};
use crate::domain::values::Username;
use crate::domain::{Error, Result, now};
use crate::store::AdminStore;
use secrecy::SecretString;
use uuid::Uuid;

/// An administrator account with a one-time password, shown once (creation or reset).
#[derive(Debug)]
pub struct AccountWithPassword {
    /// The account.
    pub account: AdminAccount,
    /// The one-time password, to hand over; it must be replaced at first log-in.
    pub password: SecretString,
}

impl<S: AdminStore + Clone> AuthService<S> {
    /// Every administrator account, by username.
    pub async fn list_admins(&self) -> Result<Vec<AdminAccount>> {
        Ok(self.store.list_admins().await?.iter().map(AdminAccount::from).collect())
    }

    /// One administrator account by username.
    pub async fn admin(&self, username: &str) -> Result<AdminAccount> {
        Ok(AdminAccount::from(&self.find(username).await?))
    }

    async fn find(&self, username: &str) -> Result<Admin> {
        self.store
            .get_admin(username)
            .await?
            .ok_or_else(|| Error::not_found("administrator", username))
    }

    /// Creates an administrator account with a one-time password.
    pub async fn create_admin(&self, username: &str, role: Role, by: &Principal) -> Result<AccountWithPassword> {
        let username = Username::parse(username.trim())?;
        let password = random_text(18);
        let admin = Admin {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            password_hash: hash_password(&password)?,
            must_change_password: true,
            created_at: now(),
            role,
            disabled_at: None,
            failed_logins: 0,
            locked_until: None,
        };
        self.store.insert_admin(&admin).await?;
        self.audit(
            AuditEvent::AdminCreated,
            &admin.username,
            &by.actor.label(),
            None,
            format!("role {}", role.as_str()),
        )
        .await?;
        Ok(AccountWithPassword {
            account: AdminAccount::from(&admin),
            password: SecretString::from(password),
        })
    }

    /// Replaces an administrator's password with a one-time password, ends their sessions and
    /// lifts a lock.
    pub async fn reset_password(&self, username: &str, by: &Principal) -> Result<AccountWithPassword> {
        let admin = self.find(username).await?;
        let password = random_text(18);
        self.store
            .set_admin_password(admin.id, &hash_password(&password)?, true)
            .await?;
        self.store.delete_sessions_of(admin.id).await?;
        self.audit(
            AuditEvent::PasswordReset,
            &admin.username,
            &by.actor.label(),
            None,
            "one-time password issued; sessions ended",
        )
        .await?;
        Ok(AccountWithPassword {
            account: self.admin(&admin.username).await?,
            password: SecretString::from(password),
        })
    }

    /// Disables (`true`) or enables an administrator account. Disabling ends their sessions and
    /// stops their API tokens; nobody disables themselves or the last enabled administrator.
    pub async fn set_disabled(&self, username: &str, disabled: bool, by: &Principal) -> Result<AdminAccount> {
        let admin = self.find(username).await?;
        if disabled == admin.disabled_at.is_some() {
            return Ok(AdminAccount::from(&admin));
        }
        if disabled {
            if by.admin_id == Some(admin.id) {
                return Err(Error::conflict("username", "you cannot disable your own account"));
            }
            self.keep_one_administrator(&admin).await?;
        }
        let at = disabled.then(now);
        self.store.set_admin_access(admin.id, admin.role, at).await?;
        self.scim_tokens.clear();
        if disabled {
            self.store.delete_sessions_of(admin.id).await?;
            // A lock from before no longer matters once an administrator re-enables the account.
        } else {
            self.store.set_login_lock(admin.id, 0, None).await?;
        }
        let event = if disabled {
            AuditEvent::AdminDisabled
        } else {
            AuditEvent::AdminEnabled
        };
        let detail = if disabled {
            "sessions ended, API tokens stopped"
        } else {
            "may log in again"
        };
        self.audit(event, &admin.username, &by.actor.label(), None, detail)
            .await?;
        self.admin(&admin.username).await
    }

    /// Changes an administrator's role (it applies at once to their sessions and tokens); the
    /// last enabled administrator keeps the administrator role.
    pub async fn set_role(&self, username: &str, role: Role, by: &Principal) -> Result<AdminAccount> {
        let admin = self.find(username).await?;
        if admin.role == role {
            return Ok(AdminAccount::from(&admin));
        }
        if role != Role::Administrator {
            self.keep_one_administrator(&admin).await?;
        }
        self.store.set_admin_access(admin.id, role, admin.disabled_at).await?;
        self.scim_tokens.clear();
        self.audit(
            AuditEvent::RoleChanged,
            &admin.username,
            &by.actor.label(),
            None,
            format!("{} -> {}", admin.role.as_str(), role.as_str()),
        )
        .await?;
        self.admin(&admin.username).await
    }

    /// Refuses a change that would leave no enabled administrator besides `admin`.
    async fn keep_one_administrator(&self, admin: &Admin) -> Result<()> {
        if admin.role != Role::Administrator || admin.disabled_at.is_some() {
            return Ok(());
        }
        let others = self
            .store
            .list_admins()
            .await?
            .into_iter()
            .filter(|a| a.id != admin.id && a.role == Role::Administrator && a.disabled_at.is_none())
            .count();
        if others == 0 {
            return Err(Error::conflict(
                "username",
                "this is the last enabled administrator: the hub needs one",
            ));
        }
        Ok(())
    }

    /// The audit log, newest first: at most `limit` lines older than `before`.
    pub async fn audit_log(&self, limit: i64, before: Option<time::OffsetDateTime>) -> Result<Vec<AuditRecord>> {
        self.store.list_audit(limit, before).await
    }
}
