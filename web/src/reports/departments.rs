//! Departments (named groups of queues, for the missed-calls report): the admin pages at
//! `/admin/departments` and the CRM API.
//!
//! | route | level | answer |
//! |-------|-------|--------|
//! | `GET /api/v1/departments` | read | array of `{"name", "queues", "created_at_ms"}` |
//! | `PUT /api/v1/departments/{name}` `{"queues": [..]}` | tune | the department |
//! | `DELETE /api/v1/departments/{name}` | tune | `{"removed": bool}` |
//!
//! Errors are the CRM API's ([`CrmError`]): a bad name or list is code 1, a queue that does
//! not exist code 3.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use callfleet_store::{Department, Store, StoreError};

use crate::admin::form::{self, Fields, Problems};
use crate::admin::resource::Resource;
use crate::admin::view::{Field, Fieldset};
use crate::admin::{db, Ctx, Failure};
use crate::api::AppState;
use crate::crm::CrmError;
use crate::names::{self, Kind};
use crate::page::Area;

/// Most queues in one department.
pub const MAX_QUEUES: usize = 200;

/// The queue names of a list typed as text: separated by commas, spaces or line breaks;
/// each checked, sorted, without repeats.
pub fn parse_queues(text: &str) -> Result<Vec<String>, form::Invalid> {
    let mut out = Vec::new();
    for q in text
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|q| !q.is_empty())
    {
        out.push(form::name("queues", Kind::Queue, q)?);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_QUEUES {
        return Err(form::invalid(
            "queues",
            format!("at most {MAX_QUEUES} queues"),
        ));
    }
    Ok(out)
}

/// The department of a form.
pub fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Department, Problems> {
    let name = form::name("name", Kind::Queue, key.unwrap_or(f.get("name")));
    let queues = parse_queues(f.get("queues"));
    match (name, queues) {
        (Ok(name), Ok(queues)) => Ok(Department {
            name,
            queues,
            created_at_ms: now_ms,
        }),
        (n, q) => Err(Problems(n.err().into_iter().chain(q.err()).collect())),
    }
}

/// The first of `queues` that does not exist, if any.
async fn missing_queue(store: &Store, queues: &[String]) -> Result<Option<String>, StoreError> {
    let known = store.queues().await?;
    Ok(queues
        .iter()
        .find(|q| !known.iter().any(|k| &k.name == *q))
        .cloned())
}

/// The departments.
pub struct Departments;

impl Resource for Departments {
    const PATH: &'static str = "departments";
    const ID: &'static str = "department";
    const NOUN: &'static str = "department";
    const TITLE: &'static str = "Departments";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Departments;
    type Row = Department;
    type Form = Department;

    fn key(row: &Department) -> &str {
        &row.name
    }

    fn form_key(form: &Department) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec!["queues"]
    }

    fn cells(d: &Department) -> Vec<String> {
        vec![d.queues.join(", ")]
    }

    fn notes() -> Vec<String> {
        vec![
            "A department groups queues for the reports (missed calls per department). \
              It changes nothing in how calls are routed."
                .into(),
        ]
    }

    fn values(d: &Department) -> Fields {
        let queues = d.queues.join(", ");
        Fields::from_pairs([("name", d.name.as_str()), ("queues", queues.as_str())])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        vec![Fieldset {
            legend: "Department",
            fields: vec![
                name.hint("Letters, digits, '-', '_', '.', '+'."),
                Field::text("queues", "Queues")
                    .from(v, "")
                    .hint("Queue names separated by commas, e.g. sales, support."),
            ],
        }]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Department, Problems> {
        check(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<Department>, StoreError> {
        store.departments().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Department>, StoreError> {
        store.department(key).await
    }

    async fn save(ctx: &Ctx, d: Department, _old: Option<Department>) -> Result<(), Failure> {
        if let Some(q) = missing_queue(&ctx.state.store, &d.queues)
            .await
            .map_err(db)?
        {
            return Err(Failure::invalid(
                "queues",
                format!("there is no queue named {q:?}"),
            ));
        }
        ctx.state.store.upsert_department(&d).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, d: Department) -> Result<(), Failure> {
        if !ctx
            .state
            .store
            .delete_department(&d.name)
            .await
            .map_err(db)?
        {
            return Err(Failure::NotFound {
                what: "department",
                name: d.name,
            });
        }
        Ok(())
    }

    fn delete_note(_d: &Department) -> Option<String> {
        Some("Its queues and their calls stay; only the grouping goes.".into())
    }
}

/// Body of `PUT /api/v1/departments/{name}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// The department's queues (replacing the ones it had).
    pub queues: Vec<String>,
}

/// Every department.
pub async fn list(store: &Store) -> Result<Vec<Department>, CrmError> {
    store.departments().await.map_err(CrmError::store)
}

/// Creates department `name` or replaces its queues.
pub async fn set(store: &Store, name: &str, queues: &[String]) -> Result<Department, CrmError> {
    if names::check(Kind::Queue, name).is_err() {
        return Err(CrmError::bad("name", Kind::Queue.rule()));
    }
    let queues = parse_queues(&queues.join(","))
        .map_err(|_| CrmError::bad("queues", "a list of up to 200 queue names"))?;
    if let Some(queue) = missing_queue(store, &queues)
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::UnknownQueue { queue });
    }
    let now = callfleet_vocab::now_ms();
    let created_at_ms = match store.department(name).await.map_err(CrmError::store)? {
        Some(old) => old.created_at_ms,
        None => now,
    };
    let dept = Department {
        name: name.to_owned(),
        queues,
        created_at_ms,
    };
    store
        .upsert_department(&dept)
        .await
        .map_err(CrmError::store)?;
    Ok(dept)
}

/// Deletes department `name`; whether there was one.
pub async fn remove(store: &Store, name: &str) -> Result<bool, CrmError> {
    store.delete_department(name).await.map_err(CrmError::store)
}

/// `GET /api/v1/departments` (level read).
pub fn read_routes() -> Router<AppState> {
    Router::new().route("/api/v1/departments", get(json_list))
}

/// `PUT` and `DELETE /api/v1/departments/{name}` (level tune).
pub fn tune_routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/departments/{name}",
        axum::routing::put(json_set).delete(json_remove),
    )
}

async fn json_list(State(state): State<AppState>) -> Result<Json<Vec<Department>>, CrmError> {
    Ok(Json(list(&state.store).await?))
}

async fn json_set(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<SetBody>, JsonRejection>,
) -> Result<Json<Department>, CrmError> {
    let Json(body) =
        body.map_err(|_| CrmError::bad("queues", "a JSON body {\"queues\": [names]}"))?;
    Ok(Json(set(&state.store, &name, &body.queues).await?))
}

async fn json_remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, CrmError> {
    let removed = remove(&state.store, &name).await?;
    Ok(Json(serde_json::json!({ "removed": removed })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lists() {
        assert_eq!(
            parse_queues("support, sales,sales\nbilling").expect("valid"),
            ["billing", "sales", "support"]
        );
        assert!(parse_queues("").expect("empty is fine").is_empty());
        assert!(parse_queues("sales, s@les").is_err());
        let many: Vec<String> = (0..=MAX_QUEUES).map(|i| format!("q{i}")).collect();
        assert!(parse_queues(&many.join(",")).is_err());
    }

    #[test]
    fn forms() {
        let f = Fields::from_pairs([("name", "front"), ("queues", "sales, support")]);
        let d = check(&f, None, 7).expect("valid");
        assert_eq!(
            (d.name.as_str(), d.queues.len(), d.created_at_ms),
            ("front", 2, 7)
        );
        let bad = Fields::from_pairs([("name", ""), ("queues", "s@les")]);
        let p = check(&bad, None, 7).expect_err("invalid");
        assert_eq!(p.fields(), ["name", "queues"]);
        // On its own page the name is the key, whatever the form says.
        let d = check(
            &Fields::from_pairs([("name", "x"), ("queues", "")]),
            Some("front"),
            1,
        )
        .expect("valid");
        assert_eq!(d.name, "front");
    }
}
