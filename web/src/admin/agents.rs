//! Agents: extension, name, PIN (stored as its hash only) and daily limit.

use callfleet_store::{Agent, Store, StoreError};

use super::form::{self, AgentForm, Fields, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, Ctx, Failure};
use crate::page::Area;

/// The agents.
pub struct Agents;

impl Resource for Agents {
    const PATH: &'static str = "agents";
    const ID: &'static str = "agent";
    const NOUN: &'static str = "agent";
    const TITLE: &'static str = "Agents";
    const KEY_FIELD: &'static str = "extension";
    const AREA: Area = Area::Agents;
    type Row = Agent;
    type Form = AgentForm;

    fn key(row: &Agent) -> &str {
        &row.extension
    }

    fn form_key(form: &AgentForm) -> &str {
        &form.agent.extension
    }

    fn headers() -> Vec<&'static str> {
        vec!["name", "state", "phone", "daily limit"]
    }

    fn cells(a: &Agent) -> Vec<String> {
        vec![
            a.name.clone(),
            a.state.label().to_owned(),
            a.device.clone().unwrap_or_default(),
            a.daily_limit.map(|n| n.to_string()).unwrap_or_default(),
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "Agents log in on a phone by dialling *11 and typing their extension and PIN; \
             *12 logs them out."
                .into(),
        ]
    }

    fn values(a: &Agent) -> Fields {
        let limit = a.daily_limit.map(|n| n.to_string()).unwrap_or_default();
        Fields::from_pairs([
            ("extension", a.extension.as_str()),
            ("name", a.name.as_str()),
            ("daily_limit", limit.as_str()),
        ])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let ext = match key {
            Some(key) => Field::text("extension", "Extension").value(key).readonly(),
            None => Field::text("extension", "Extension").from(v, "").required(),
        };
        let pin = Field::password("pin", "PIN");
        let pin = match key {
            Some(_) => {
                pin.hint("Digits, dialled on the phone's keypad. Leave empty to keep the PIN.")
            }
            None => pin.required().hint(format!(
                "1 to {} digits, dialled on the phone's keypad.",
                form::MAX_PIN
            )),
        };
        vec![
            Fieldset {
                legend: "Agent",
                fields: vec![
                    ext.hint("The agent's number: letters, digits, '-', '_', '.', '+'."),
                    Field::text("name", "Name").from(v, ""),
                    pin,
                ],
            },
            Fieldset {
                legend: "Limits",
                fields: vec![Field::number(
                    "daily_limit",
                    "Daily limit",
                    0,
                    form::MAX_DAILY_LIMIT,
                    "1",
                )
                .from(v, "")
                .hint("Calls and sales a day before the agent drops to its queues' last tier. Empty: no limit.")],
            },
        ]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<AgentForm, Problems> {
        form::agent(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<Agent>, StoreError> {
        store.agents().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Agent>, StoreError> {
        store.agent(key).await
    }

    async fn save(ctx: &Ctx, form: AgentForm, old: Option<Agent>) -> Result<(), Failure> {
        let mut agent = form.agent;
        if let (false, Some(old)) = (form.new_pin, old) {
            agent.pin_hash = old.pin_hash;
        }
        ctx.state.store.upsert_agent(&agent).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, a: Agent) -> Result<(), Failure> {
        // The row read just now: a call that starts after it is the dispatcher's to end.
        if a.state.holds_call() {
            return Err(Failure::invalid(
                "",
                format!(
                    "agent {} is on a call; delete it once the call has ended",
                    a.extension
                ),
            ));
        }
        if !ctx
            .state
            .store
            .delete_agent(&a.extension)
            .await
            .map_err(db)?
        {
            return Err(Failure::NotFound {
                what: "agent",
                name: a.extension,
            });
        }
        Ok(())
    }

    fn delete_note(a: &Agent) -> Option<String> {
        let who = match a.name.as_str() {
            "" => a.extension.clone(),
            name => format!("{} ({name})", a.extension),
        };
        Some(format!(
            "{who} leaves every queue it is a member of{}.",
            match &a.device {
                Some(d) => format!(" and is logged out of phone {d}"),
                None => String::new(),
            }
        ))
    }
}
