//! Panel users: role, password (argon2id) and phone. Nobody removes themself or takes away
//! their own admin role.

use callfleet_store::{Store, StoreError, User, UserRole};

use super::form::{self, Fields, NewUser, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, now_ms, Ctx, Failure};
use crate::auth;
use crate::page::Area;

/// The panel users.
pub struct Users;

impl Resource for Users {
    const PATH: &'static str = "users";
    const ID: &'static str = "user";
    const NOUN: &'static str = "user";
    const TITLE: &'static str = "Users";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Users;
    type Row = User;
    type Form = NewUser;

    fn key(row: &User) -> &str {
        &row.name
    }

    fn form_key(form: &NewUser) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec!["role", "phone"]
    }

    fn cells(u: &User) -> Vec<String> {
        vec![
            u.role.as_str().to_owned(),
            u.device.clone().unwrap_or_default(),
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "Supervisors use the panel; admins also these pages. Saving a user ends its \
             sessions: it logs in again."
                .into(),
        ]
    }

    fn values(u: &User) -> Fields {
        Fields::from_pairs([
            ("name", u.name.as_str()),
            ("role", u.role.as_str()),
            ("device", u.device.as_deref().unwrap_or("")),
        ])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        let password = Field::password("password", "Password");
        let password = match key {
            Some(_) => password.hint(format!(
                "At least {} characters. Leave empty to keep the password.",
                form::MIN_PASSWORD
            )),
            None => password
                .required()
                .hint(format!("At least {} characters.", form::MIN_PASSWORD)),
        };
        vec![Fieldset {
            legend: "User",
            fields: vec![
                name.hint("The login name: letters, digits, '-', '_', '.', '@'."),
                Field::select("role", "Role", &["supervisor", "admin"]).from(v, "supervisor"),
                password,
                Field::text("device", "Phone")
                    .from(v, "")
                    .hint("The extension listen-in rings. Empty: none."),
            ],
        }]
    }

    fn check(f: &Fields, key: Option<&str>, _now_ms: i64) -> Result<NewUser, Problems> {
        form::user(f, key)
    }

    async fn list(store: &Store) -> Result<Vec<User>, StoreError> {
        store.users().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<User>, StoreError> {
        store.user(key).await
    }

    async fn save(ctx: &Ctx, u: NewUser, old: Option<User>) -> Result<(), Failure> {
        if u.name == ctx.user && u.role != UserRole::Admin {
            return Err(Failure::invalid(
                "role",
                "you cannot take away your own admin role; another admin can",
            ));
        }
        let hash = match (u.password, old) {
            (Some(password), _) => {
                tokio::task::spawn_blocking(move || auth::hash_password(&password))
                    .await
                    .map_err(|e| Failure::Internal(Box::new(e)))?
                    .map_err(|e| Failure::Internal(Box::new(e)))?
            }
            (None, Some(old)) => old.password_hash,
            (None, None) => return Err(Failure::invalid("password", "required")),
        };
        let row = User {
            name: u.name,
            password_hash: hash,
            role: u.role,
            device: u.device,
            created_at_ms: now_ms(),
        };
        ctx.state.store.upsert_user(&row).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, u: User) -> Result<(), Failure> {
        if !ctx.state.store.delete_user(&u.name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "user",
                name: u.name,
            });
        }
        Ok(())
    }

    fn undeletable(ctx: &Ctx, u: &User) -> Option<&'static str> {
        (u.name == ctx.user).then_some("you cannot remove yourself; another admin can")
    }

    fn delete_note(u: &User) -> Option<String> {
        Some(format!(
            "{} can no longer log in; its open sessions end now.",
            u.name
        ))
    }
}
