//! Carriers: a name and a network (CIDR) whose calls are admitted besides `carriers.allow`.

use callfleet_store::{Carrier, Store, StoreError};

use super::form::{self, Fields, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, Ctx, Failure};
use crate::page::Area;

/// The carriers.
pub struct Carriers;

impl Resource for Carriers {
    const PATH: &'static str = "carriers";
    const ID: &'static str = "carrier";
    const NOUN: &'static str = "carrier";
    const TITLE: &'static str = "Carriers";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Carriers;
    type Row = Carrier;
    type Form = Carrier;

    fn key(row: &Carrier) -> &str {
        &row.name
    }

    fn form_key(form: &Carrier) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec!["network"]
    }

    fn cells(c: &Carrier) -> Vec<String> {
        vec![c.network.clone()]
    }

    fn notes() -> Vec<String> {
        vec![
            "New calls are taken from these networks and from each node's carriers.allow. \
             Every node uses a change from its next call on (within a second or two)."
                .into(),
            "Office proxies, whose address moves, are listed on /admin/proxies.".into(),
        ]
    }

    fn values(c: &Carrier) -> Fields {
        Fields::from_pairs([("name", c.name.as_str()), ("network", c.network.as_str())])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        vec![Fieldset {
            legend: "Carrier",
            fields: vec![
                name.hint("Letters, digits, '-', '_', '.'."),
                Field::text("network", "Network")
                    .from(v, "")
                    .required()
                    .hint("The addresses its calls come from, in CIDR: 203.0.113.0/24, 2001:db8::/32, or one address."),
            ],
        }]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Carrier, Problems> {
        form::carrier(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<Carrier>, StoreError> {
        store.carriers().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Carrier>, StoreError> {
        Ok(store.carriers().await?.into_iter().find(|c| c.name == key))
    }

    async fn save(ctx: &Ctx, c: Carrier, _old: Option<Carrier>) -> Result<(), Failure> {
        ctx.state.store.upsert_carrier(&c).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, c: Carrier) -> Result<(), Failure> {
        if !ctx.state.store.delete_carrier(&c.name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "carrier",
                name: c.name,
            });
        }
        Ok(())
    }

    fn delete_note(c: &Carrier) -> Option<String> {
        Some(format!(
            "New calls from {} are refused unless a node's carriers.allow lists it; calls in \
             progress go on.",
            c.network
        ))
    }
}
