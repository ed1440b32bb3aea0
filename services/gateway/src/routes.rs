//! The route table: every RPC with a `google.api.http` annotation becomes one REST route per
//! binding. Nothing here knows about flights or bookings — an annotated RPC needs no new code.
//! A server-streaming RPC becomes a streamed route ([`crate::streaming`]); a client-streaming
//! one cannot be annotated. An RPC without the annotation (the stats worker's
//! `StreamBookingSnapshots`) has no REST route at all.

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MethodDescriptor, Value,
};

/// `google.api.field_behavior` value meaning "optional" (in an answer: may be unset).
const FIELD_BEHAVIOR_OPTIONAL: i32 = 1;
/// `google.api.field_behavior` value meaning "required".
const FIELD_BEHAVIOR_REQUIRED: i32 = 2;

/// What part of the request message the HTTP body fills.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// No body: fields not bound by the path come from the query string.
    None,
    /// `body: "*"`: the body is the request message (minus path fields).
    Whole,
    /// `body: "<field>"`: the body is that field.
    Field(FieldDescriptor),
}

/// One REST route of one RPC.
#[derive(Debug, Clone)]
pub struct Route {
    /// GET, POST, …
    pub http_method: Method,
    /// The path template with `{field}` variables, as in the annotation (no trailing slash).
    pub template: String,
    /// Fields bound by path variables, in template order.
    pub path_fields: Vec<FieldDescriptor>,
    /// What the body carries.
    pub body: BodyRule,
    /// `response_body`: answer with this field of the response instead of the whole message
    /// (how list routes answer bare arrays).
    pub response_body: Option<FieldDescriptor>,
    /// The RPC.
    pub method: MethodDescriptor,
    /// The RPC's HTTP/2 path, `/<package>.<Service>/<Method>`, made once rather than per call.
    pub grpc_path: http::uri::PathAndQuery,
}

impl Route {
    /// Whether the RPC answers a stream of messages (served as SSE or NDJSON).
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        self.method.is_server_streaming()
    }

    /// `flightmesh.flights.v1.FlightService` → `flights` (the mesh service owning the RPC).
    #[must_use]
    pub fn domain(&self) -> &str {
        domain_of(self.method.parent_service().full_name())
    }

    /// Query-string fields: those neither in the path nor in the body.
    #[must_use]
    pub fn query_fields(&self) -> Vec<FieldDescriptor> {
        if matches!(self.body, BodyRule::Whole) {
            return Vec::new();
        }
        self.method
            .input()
            .fields()
            .filter(|field| {
                !self
                    .path_fields
                    .iter()
                    .any(|p| p.number() == field.number())
                    && !matches!(&self.body, BodyRule::Field(b) if b.number() == field.number())
            })
            .collect()
    }
}

/// The second segment of a package-qualified name: `flightmesh.<domain>.v1.Service`.
#[must_use]
pub fn domain_of(full_name: &str) -> &str {
    full_name.split('.').nth(1).unwrap_or(full_name)
}

/// A route that cannot be served; reported at start-up, never at request time.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The descriptor set has no `google.api.http` extension.
    #[error("the descriptor set does not define google.api.http")]
    NoHttpExtension,
    /// An annotation this gateway does not support.
    #[error("{method}: {reason}")]
    Unsupported {
        /// The RPC.
        method: String,
        /// Why.
        reason: String,
    },
}

/// Whether `field` is annotated `(google.api.field_behavior) = REQUIRED`.
#[must_use]
pub fn is_required(field: &FieldDescriptor) -> bool {
    has_field_behavior(field, FIELD_BEHAVIOR_REQUIRED)
}

/// Whether an answer may leave `field` unset (`null` in JSON): proto3 `optional`, or a message
/// field annotated `(google.api.field_behavior) = OPTIONAL`. The services always set every other
/// field of an answer.
#[must_use]
pub fn may_be_unset(field: &FieldDescriptor) -> bool {
    field.field_descriptor_proto().proto3_optional()
        || has_field_behavior(field, FIELD_BEHAVIOR_OPTIONAL)
}

fn has_field_behavior(field: &FieldDescriptor, behavior: i32) -> bool {
    let Some(ext) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return false;
    };
    let options = field.options();
    if !options.has_extension(&ext) {
        return false;
    }
    match options.get_extension(&ext).as_ref() {
        Value::List(values) => values
            .iter()
            .any(|v| matches!(v, Value::EnumNumber(n) if *n == behavior)),
        Value::EnumNumber(n) => *n == behavior,
        _ => false,
    }
}

/// Every route of every annotated unary or server-streaming RPC in `pool`, sorted by path then
/// method.
pub fn routes(pool: &DescriptorPool) -> Result<Vec<Route>, RouteError> {
    let http = pool
        .get_extension_by_name("google.api.http")
        .ok_or(RouteError::NoHttpExtension)?;
    let mut routes = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&http) {
                continue;
            }
            let unsupported = |reason: &str| RouteError::Unsupported {
                method: method.full_name().to_owned(),
                reason: reason.to_owned(),
            };
            if method.is_client_streaming() {
                return Err(unsupported("client-streaming RPCs cannot have REST routes"));
            }
            let rule = options.get_extension(&http);
            let Value::Message(rule) = rule.as_ref() else {
                return Err(unsupported("google.api.http is not a message"));
            };
            routes.push(route(&method, rule)?);
            if let Some(Value::List(extra)) =
                rule.get_field_by_name("additional_bindings").as_deref()
            {
                for binding in extra {
                    if let Value::Message(binding) = binding {
                        routes.push(route(&method, binding)?);
                    }
                }
            }
        }
    }
    routes.sort_by(|a, b| {
        (a.template.as_str(), a.http_method.as_str())
            .cmp(&(b.template.as_str(), b.http_method.as_str()))
    });
    Ok(routes)
}

fn route(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, RouteError> {
    let unsupported = |reason: String| RouteError::Unsupported {
        method: method.full_name().to_owned(),
        reason,
    };
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (http_method, template) = [
        (Method::GET, "get"),
        (Method::POST, "post"),
        (Method::PUT, "put"),
        (Method::DELETE, "delete"),
        (Method::PATCH, "patch"),
    ]
    .into_iter()
    .find_map(|(verb, field)| {
        let path = text(field);
        (!path.is_empty()).then_some((verb, path))
    })
    .ok_or_else(|| unsupported("only get/post/put/delete/patch bindings are supported".into()))?;

    let input = method.input();
    let mut path_fields = Vec::new();
    for segment in template.trim_start_matches('/').split('/') {
        if let Some(var) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let name = var.strip_suffix("=*").unwrap_or(var);
            let field = input.get_field_by_name(name).ok_or_else(|| {
                unsupported(format!(
                    "path variable {{{name}}} is not a field of {}",
                    input.full_name()
                ))
            })?;
            if field.is_list() || field.is_map() || matches!(field.kind(), Kind::Message(_)) {
                return Err(unsupported(format!(
                    "path variable {{{name}}} must be a scalar field"
                )));
            }
            path_fields.push(field);
        } else if segment.contains(['{', '}', '*', ':']) {
            return Err(unsupported(format!(
                "path segment {segment:?} is not supported"
            )));
        }
    }

    let body = match text("body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        name => BodyRule::Field(
            input
                .get_field_by_name(name)
                .ok_or_else(|| unsupported(format!("body field {name} does not exist")))?,
        ),
    };
    let response_body =
        match text("response_body").as_str() {
            "" => None,
            name => Some(method.output().get_field_by_name(name).ok_or_else(|| {
                unsupported(format!("response_body field {name} does not exist"))
            })?),
        };
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|_| unsupported("the RPC's name is not a valid HTTP/2 path".to_owned()))?;
    Ok(Route {
        http_method,
        template: template.trim_end_matches('/').to_owned(),
        grpc_path,
        path_fields,
        body,
        response_body,
        method: method.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn reads_bindings_from_annotations() {
        let routes = routes(&pool()).unwrap();
        let get_flight = routes
            .iter()
            .find(|r| r.template == "/api/v1/flights/{id}" && r.http_method == Method::GET)
            .unwrap();
        assert_eq!(get_flight.method.name(), "GetFlight");
        assert_eq!(get_flight.domain(), "flights");
        assert_eq!(get_flight.path_fields[0].name(), "id");

        let list = routes
            .iter()
            .find(|r| r.template == "/api/v1/flights" && r.http_method == Method::GET)
            .unwrap();
        assert_eq!(list.response_body.as_ref().unwrap().name(), "flights");
        let query: Vec<_> = list
            .query_fields()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(query, ["skip", "limit"]);
    }

    #[test]
    fn server_streaming_rpcs_are_routes_only_when_annotated() {
        let routes = routes(&pool()).unwrap();
        let stream = routes
            .iter()
            .find(|r| r.template == "/api/v1/ai/chat/stream")
            .expect("ChatStream is routed");
        assert!(stream.is_streaming());
        assert_eq!(stream.http_method, Method::POST);
        assert!(matches!(stream.body, BodyRule::Whole));
        let chat = routes
            .iter()
            .find(|r| r.template == "/api/v1/ai/chat")
            .unwrap();
        assert!(!chat.is_streaming());
        // The stats worker's snapshot stream is for the mesh only: no annotation, no route.
        assert!(
            routes
                .iter()
                .all(|r| r.method.name() != "StreamBookingSnapshots"),
            "StreamBookingSnapshots must not be exposed over REST"
        );
        let streamed: Vec<&str> = routes
            .iter()
            .filter(|r| r.is_streaming())
            .map(|r| r.template.as_str())
            .collect();
        assert_eq!(streamed, ["/api/v1/ai/chat/stream"]);
    }

    #[test]
    fn reads_required_fields() {
        let pool = pool();
        let create = pool
            .get_message_by_name("flightmesh.flights.v1.CreateDestinationRequest")
            .unwrap();
        let required: Vec<_> = create
            .fields()
            .filter(is_required)
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(required, ["name", "tax_amount"]);
    }
}
