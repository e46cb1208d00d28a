//! Reading an organization's audit log: filters, newest first, one page at a time
//! (keyset on `(at, id)`, so a page never repeats or skips a row when new rows
//! arrive between pages).

use super::audit::AuditRecord;
use super::Store;

/// Which actions a query keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    /// Exactly this action.
    Exact(String),
    /// Actions starting with this text (e.g. `schedule.`).
    Prefix(String),
}

/// A query of one organization's audit log.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    /// The organization whose rows are read.
    pub organization_id: String,
    /// Only rows of this actor.
    pub actor_id: Option<String>,
    /// Only rows about this record id.
    pub target_id: Option<String>,
    /// Only rows about this kind of record.
    pub target_type: Option<String>,
    /// Only these actions.
    pub action: Option<ActionFilter>,
    /// Only rows at or after this instant (Unix ms).
    pub from_ms: Option<i64>,
    /// Only rows before this instant (Unix ms).
    pub to_ms: Option<i64>,
    /// Only rows older than this `(at, id)`: the last row of the previous page.
    pub before: Option<(i64, String)>,
    /// At most this many rows.
    pub limit: i64,
}

/// A bound value of the built query.
enum Param {
    Text(String),
    Int(i64),
}

/// The WHERE clause of `query` and its values, numbered from `$1`.
fn conditions(query: &AuditQuery) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let mut push = |clause: &dyn Fn(usize) -> String, values: Vec<Param>| {
        clauses.push(clause(params.len() + 1));
        params.extend(values);
    };
    let text = |v: &str| Param::Text(v.to_string());
    push(
        &|n| format!("organization_id = ${n}"),
        vec![text(&query.organization_id)],
    );
    if let Some(actor) = &query.actor_id {
        push(&|n| format!("actor_id = ${n}"), vec![text(actor)]);
    }
    if let Some(target) = &query.target_id {
        push(&|n| format!("target_id = ${n}"), vec![text(target)]);
    }
    if let Some(kind) = &query.target_type {
        push(&|n| format!("target_type = ${n}"), vec![text(kind)]);
    }
    match &query.action {
        Some(ActionFilter::Exact(action)) => {
            push(&|n| format!("action = ${n}"), vec![text(action)]);
        }
        // substr, not LIKE: `_` in action names is no wildcard, and the comparison
        // stays case-sensitive on SQLite.
        Some(ActionFilter::Prefix(prefix)) => {
            let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
            push(
                &|n| format!("substr(action, 1, CAST(${n} AS INTEGER)) = ${}", n + 1),
                vec![Param::Int(chars), text(prefix)],
            );
        }
        None => {}
    }
    if let Some(from) = query.from_ms {
        push(&|n| format!("at >= ${n}"), vec![Param::Int(from)]);
    }
    if let Some(to) = query.to_ms {
        push(&|n| format!("at < ${n}"), vec![Param::Int(to)]);
    }
    if let Some((at, id)) = &query.before {
        push(
            &|n| format!("(at < ${n} OR (at = ${n} AND id < ${}))", n + 1),
            vec![Param::Int(*at), text(id)],
        );
    }
    (clauses.join(" AND "), params)
}

impl Store {
    /// One page of an organization's audit log, newest first.
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let (clause, params) = conditions(query);
        let sql = format!(
            "SELECT id, organization_id, actor_id, actor_role, action, target_type, target_id, \
             before_state, after_state, at FROM audit_log WHERE {clause} \
             ORDER BY at DESC, id DESC LIMIT ${}",
            params.len() + 1
        );
        let mut q = sqlx::query_as::<_, AuditRecord>(&sql);
        for param in params {
            q = match param {
                Param::Text(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
            };
        }
        q.bind(query.limit).fetch_all(self.pool()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_gets_its_own_numbered_parameters() {
        let query = AuditQuery {
            organization_id: "o".into(),
            actor_id: Some("a".into()),
            target_id: None,
            target_type: Some("therapist".into()),
            action: Some(ActionFilter::Prefix("schedule.".into())),
            from_ms: Some(1),
            to_ms: None,
            before: Some((5, "x".into())),
            limit: 10,
        };
        let (clause, params) = conditions(&query);
        assert_eq!(
            clause,
            "organization_id = $1 AND actor_id = $2 AND target_type = $3 AND \
             substr(action, 1, CAST($4 AS INTEGER)) = $5 AND at >= $6 AND \
             (at < $7 OR (at = $7 AND id < $8))"
        );
        assert_eq!(params.len(), 8);
    }
}
