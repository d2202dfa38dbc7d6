//! What the crate's unit tests share: a node that does nothing, for handlers whose node side
//! the test does not look at.

use crate::api::NodeApi;

/// The six node operations every [`NodeApi`] has, answered with nothing: no nodes, no calls,
/// no agents, and drains, logins and logouts that succeed. A test's own node writes
/// `no_node_basics!();` in its `impl NodeApi` and adds the operations it looks at.
macro_rules! no_node_basics {
    () => {
        fn nodes(&self) -> serde_json::Value {
            serde_json::json!([])
        }
        fn calls(
            &self,
        ) -> $crate::api::BoxFuture<'static, Result<serde_json::Value, $crate::error::ApiError>> {
            Box::pin(async { Ok(serde_json::json!([])) })
        }
        fn drain(&self) -> $crate::api::BoxFuture<'static, Result<(), $crate::error::ApiError>> {
            Box::pin(async { Ok(()) })
        }
        fn agents(
            &self,
        ) -> $crate::api::BoxFuture<'static, Result<serde_json::Value, $crate::error::ApiError>> {
            Box::pin(async { Ok(serde_json::json!([])) })
        }
        fn agent_login(
            &self,
            _: String,
            _: String,
        ) -> $crate::api::BoxFuture<'static, Result<(), $crate::error::ApiError>> {
            Box::pin(async { Ok(()) })
        }
        fn agent_logout(
            &self,
            _: String,
        ) -> $crate::api::BoxFuture<'static, Result<(), $crate::error::ApiError>> {
            Box::pin(async { Ok(()) })
        }
    };
}
pub(crate) use no_node_basics;

/// A node that does nothing: every operation answers with nothing or succeeds, and the
/// optional ones keep their defaults.
pub(crate) struct NoNode;

impl NodeApi for NoNode {
    no_node_basics!();
}
