//! Phones (devices): extension, name and password, stored as HA1 digests only.

use callfleet_store::{Device, Store, StoreError};

use super::form::{self, Fields, NewDevice, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, now_ms, Ctx, Failure};
use crate::page::Area;

/// The phones allowed to register.
pub struct Devices;

impl Resource for Devices {
    const PATH: &'static str = "devices";
    const ID: &'static str = "device";
    const NOUN: &'static str = "phone";
    const TITLE: &'static str = "Phones";
    const KEY_FIELD: &'static str = "extension";
    const AREA: Area = Area::Phones;
    type Row = Device;
    type Form = NewDevice;

    fn key(row: &Device) -> &str {
        &row.extension
    }

    fn form_key(form: &NewDevice) -> &str {
        &form.extension
    }

    fn headers() -> Vec<&'static str> {
        vec!["name", "realm"]
    }

    fn cells(d: &Device) -> Vec<String> {
        vec![d.display_name.clone(), d.realm.clone()]
    }

    fn notes() -> Vec<String> {
        vec![
            "A phone registers with its extension as user name and its password; only \
             digests of the password are stored."
                .into(),
        ]
    }

    fn values(d: &Device) -> Fields {
        Fields::from_pairs([
            ("extension", d.extension.as_str()),
            ("name", d.display_name.as_str()),
        ])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let ext = match key {
            Some(key) => Field::text("extension", "Extension").value(key).readonly(),
            None => Field::text("extension", "Extension").from(v, "").required(),
        };
        let password = Field::password("password", "Password");
        let password = match key {
            Some(_) => password.hint("Leave empty to keep the password."),
            None => password.required().hint("The phone's SIP password."),
        };
        vec![Fieldset {
            legend: "Phone",
            fields: vec![
                ext.hint("The SIP user name: letters, digits, '-', '_', '.', '+'."),
                Field::text("name", "Name")
                    .from(v, "")
                    .hint("Where it stands, e.g. Front desk."),
                password,
            ],
        }]
    }

    fn check(f: &Fields, key: Option<&str>, _now_ms: i64) -> Result<NewDevice, Problems> {
        form::device(f, key)
    }

    async fn list(store: &Store) -> Result<Vec<Device>, StoreError> {
        store.devices().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Device>, StoreError> {
        store.device(key).await
    }

    async fn save(ctx: &Ctx, d: NewDevice, old: Option<Device>) -> Result<(), Failure> {
        let row = match (d.password, old) {
            (Some(password), _) => {
                let mut row = ctx
                    .state
                    .api
                    .device_credentials(&d.extension, &d.name, &password)
                    .map_err(|e| Failure::Internal(Box::new(e)))?;
                row.created_at_ms = now_ms();
                row
            }
            // A new name only: the digests stay.
            (None, Some(old)) => Device {
                display_name: d.name,
                ..old
            },
            (None, None) => return Err(Failure::invalid("password", "required")),
        };
        ctx.state.store.upsert_device(&row).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, d: Device) -> Result<(), Failure> {
        if !ctx
            .state
            .store
            .delete_device(&d.extension)
            .await
            .map_err(db)?
        {
            return Err(Failure::NotFound {
                what: "phone",
                name: d.extension,
            });
        }
        Ok(())
    }

    fn delete_note(d: &Device) -> Option<String> {
        Some(format!(
            "Phone {} can no longer register; its current registration runs out by itself, and \
             an agent logged in on it stays until logged out.",
            d.extension
        ))
    }
}
