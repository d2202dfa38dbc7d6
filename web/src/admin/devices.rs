//! Phones (devices): extension, name and password, stored as HA1 digests only; a phone that
//! provisioned itself shows its MAC.

use callfleet_store::{Device, Store, StoreError};

use super::form::{self, Fields, NewDevice, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, now_ms, Ctx, Failure};
use crate::page::Area;

/// The phones allowed to register.
pub struct Devices;

/// A device and, when it provisioned itself (`/provision/`), the phone's MAC.
pub struct PhoneRow {
    /// The stored device.
    pub device: Device,
    /// 12 lower-case hex digits, or `None` for a device made by hand.
    pub mac: Option<String>,
}

/// Every device with its MAC, by extension.
async fn phone_rows(store: &Store) -> Result<Vec<PhoneRow>, StoreError> {
    let phones = store.provisioned_phones().await?;
    Ok(store
        .devices()
        .await?
        .into_iter()
        .map(|device| PhoneRow {
            mac: phones
                .iter()
                .find(|p| p.extension == device.extension)
                .map(|p| p.mac.clone()),
            device,
        })
        .collect())
}

impl Resource for Devices {
    const PATH: &'static str = "devices";
    const ID: &'static str = "device";
    const NOUN: &'static str = "phone";
    const TITLE: &'static str = "Phones";
    const KEY_FIELD: &'static str = "extension";
    const AREA: Area = Area::Phones;
    type Row = PhoneRow;
    type Form = NewDevice;

    fn key(row: &PhoneRow) -> &str {
        &row.device.extension
    }

    fn form_key(form: &NewDevice) -> &str {
        &form.extension
    }

    fn headers() -> Vec<&'static str> {
        vec!["name", "realm", "MAC"]
    }

    fn cells(row: &PhoneRow) -> Vec<String> {
        let d = &row.device;
        vec![
            d.display_name.clone(),
            d.realm.clone(),
            row.mac.clone().unwrap_or_default(),
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "A phone registers with its extension as user name and its password; only \
             digests of the password are stored."
                .into(),
            "A phone with a MAC configured itself over /provision/ with a provisioning token \
             (callfleet provision token add); deleting it lets that MAC provision again."
                .into(),
        ]
    }

    fn values(row: &PhoneRow) -> Fields {
        let d = &row.device;
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

    async fn list(store: &Store) -> Result<Vec<PhoneRow>, StoreError> {
        phone_rows(store).await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<PhoneRow>, StoreError> {
        let Some(device) = store.device(key).await? else {
            return Ok(None);
        };
        let mac = store
            .provisioned_phones()
            .await?
            .into_iter()
            .find(|p| p.extension == key)
            .map(|p| p.mac);
        Ok(Some(PhoneRow { device, mac }))
    }

    async fn save(ctx: &Ctx, d: NewDevice, old: Option<PhoneRow>) -> Result<(), Failure> {
        let row = match (d.password, old.map(|r| r.device)) {
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

    async fn remove(ctx: &Ctx, row: PhoneRow) -> Result<(), Failure> {
        let d = row.device;
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

    fn delete_note(row: &PhoneRow) -> Option<String> {
        let again = match &row.mac {
            Some(mac) => format!(" Phone {mac} may provision itself again with a token."),
            None => String::new(),
        };
        Some(format!(
            "Phone {} can no longer register; its current registration runs out by itself, and \
             an agent logged in on it stays until logged out.{again}",
            row.device.extension
        ))
    }
}
