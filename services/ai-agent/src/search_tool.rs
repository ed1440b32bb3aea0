//! `search_destinations`, the model's tool over the semantic destination search.

use std::sync::Arc;

use rig_agent::tool::{Tool, ToolContext, ToolExecutionError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::search::{DEFAULT_LIMIT, DestinationSearch};

/// `{"query": "...", "limit": n}`.
#[derive(Debug, Deserialize)]
pub struct SearchDestinationsArgs {
    query: String,
    #[serde(default)]
    limit: Option<i32>,
}

/// The model's tool: destinations by what the traveller wants to do.
pub struct SearchDestinations {
    pub search: Arc<DestinationSearch>,
}

impl Tool for SearchDestinations {
    const NAME: &'static str = "search_destinations";
    type Args = SearchDestinationsArgs;
    type Output = Value;
    type Error = ToolExecutionError;

    fn description(&self) -> String {
        "Busca destinos por su descripción (qué se puede hacer allí: playas, buceo, esquí, cultura…). Devuelve id, nombre, \
         descripción y similitud (0 a 1), del más parecido al menos."
            .to_owned()
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Lo que busca el viajero, p. ej. bucear en arrecifes de coral"},
                "limit": {"type": "integer", "description": "Cuántos destinos (1 a 10, por defecto 5)"}
            },
            "required": ["query"]
        })
    }

    async fn call(
        &self,
        _ctx: &mut ToolContext,
        args: SearchDestinationsArgs,
    ) -> Result<Value, ToolExecutionError> {
        metrics::counter!("ai_tool_calls_total", "tool" => Self::NAME).increment(1);
        let query = args.query.trim();
        if query.is_empty() {
            return Ok(json!({"error": "La consulta está vacía."}));
        }
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 10);
        match self.search.search(query, limit).await {
            Ok(found) => Ok(json!({ "destinations": found })),
            Err(err) => {
                tracing::warn!(error = %err, "search_destinations could not search");
                Err(ToolExecutionError::other(
                    "La búsqueda de destinos no está disponible en este momento; intenta más tarde.",
                ))
            }
        }
    }
}
