//! Departments: named groups of queues, for the reports (a department's missed calls).
//! Managed on the admin pages and over the CRM API; nodes never read them on the call path.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Store, StoreError};

/// One department and its queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// Primary key.
    pub name: String,
    /// Names of its queues, sorted; each must exist.
    pub queues: Vec<String>,
    pub created_at_ms: i64,
}

impl Store {
    /// Creates a department or replaces its queues (an existing one keeps its creation time),
    /// in one transaction. A queue that does not exist is refused
    /// ([`StoreError::MissingReference`]) and nothing changes.
    pub async fn upsert_department(&self, dept: &Department) -> Result<(), StoreError> {
        const WHAT: &str = "save department";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        sqlx::query(
            "INSERT INTO departments (name, created_at_ms) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&dept.name)
        .bind(dept.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::write(WHAT))?;
        sqlx::query("DELETE FROM department_queues WHERE department = $1")
            .bind(&dept.name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        for queue in &dept.queues {
            sqlx::query("INSERT INTO department_queues (department, queue) VALUES ($1, $2)")
                .bind(&dept.name)
                .bind(queue)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(WHAT))?;
        }
        tx.commit().await.map_err(StoreError::write(WHAT))
    }

    /// Every department with its queues, by name.
    pub async fn departments(&self) -> Result<Vec<Department>, StoreError> {
        const WHAT: &str = "list departments";
        let rows = sqlx::query(
            "SELECT d.name, d.created_at_ms, q.queue FROM departments d \
             LEFT JOIN department_queues q ON q.department = d.name \
             ORDER BY d.name, q.queue",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        let mut out: Vec<Department> = Vec::new();
        for row in &rows {
            let name: String = row.try_get(0).map_err(StoreError::query(WHAT))?;
            let created_at_ms: i64 = row.try_get(1).map_err(StoreError::query(WHAT))?;
            let queue: Option<String> = row.try_get(2).map_err(StoreError::query(WHAT))?;
            if out.last().is_none_or(|d| d.name != name) {
                out.push(Department {
                    name,
                    queues: Vec::new(),
                    created_at_ms,
                });
            }
            if let (Some(q), Some(d)) = (queue, out.last_mut()) {
                d.queues.push(q);
            }
        }
        Ok(out)
    }

    /// The department named `name`.
    pub async fn department(&self, name: &str) -> Result<Option<Department>, StoreError> {
        Ok(self
            .departments()
            .await?
            .into_iter()
            .find(|d| d.name == name))
    }

    /// Deletes a department (its queues stay); returns `false` if there was none.
    pub async fn delete_department(&self, name: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM departments WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("delete department"))?;
        Ok(res.rows_affected() > 0)
    }
}
