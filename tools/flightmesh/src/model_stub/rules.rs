//! The request rules each provider enforces: [`check`] answers the provider's 400 message for
//! the first rule a request breaks.

use serde_json::Value;

use super::Rules;

/// Checks `request` against `rules`; the message of the 400 otherwise.
///
/// # Errors
/// The provider's message for the first rule the request breaks.
// Over 80 lines: one pass over the request, rule by rule in the providers' order, kept whole so
// the rules read as the providers document them.
pub fn check(rules: &Rules, request: &Value) -> Result<(), String> {
    let groq = matches!(rules, Rules::Groq { .. });
    let Some(body) = request.as_object() else {
        return Err("the request body must be a JSON object".into());
    };
    if groq {
        for field in ["logprobs", "logit_bias", "top_logprobs"] {
            if body.contains_key(field) {
                return Err(format!("'{field}' : property '{field}' is unsupported"));
            }
        }
    }
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("'model' : property 'model' is missing".into());
    }
    if let Some(n) = body.get("n")
        && n.as_u64() != Some(1)
    {
        return Err("'n' : only one completion choice is allowed (n must be 1)".into());
    }
    let streaming = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err("'stream' : value must be a boolean".into()),
    };
    if body.get("stream_options").is_some_and(|o| !o.is_null()) && !streaming {
        return Err("'stream_options' is only allowed when 'stream' is enabled".into());
    }
    if let Some(temperature) = body.get("temperature")
        && !temperature
            .as_f64()
            .is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Err("'temperature' : must be a number between 0 and 2".into());
    }
    check_tools(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("'messages' : must be a non-empty array")?;
    let mut calls: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages.{i}");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or(format!("'{at}.role' : property 'role' is missing"))?;
        if groq && message.get("name").is_some() {
            return Err(format!("'{at}.name' : property 'name' is unsupported"));
        }
        let content = message.get("content");
        let string_only = groq && matches!(role, "system" | "assistant");
        match content {
            None | Some(Value::Null) if role == "assistant" => {}
            Some(Value::String(_)) => {}
            Some(Value::Array(_)) if string_only => {
                return Err(format!(
                    "'{at}' : for 'role:{role}' the following must be satisfied[('{at}.content' : value must be a string)]"
                ));
            }
            Some(Value::Array(parts)) => check_parts(&at, role, parts)?,
            _ => {
                return Err(format!(
                    "'{at}.content' : value must be a string or an array"
                ));
            }
        }
        match role {
            "system" | "developer" | "user" => {}
            "assistant" => {
                let tool_calls = message.get("tool_calls").and_then(Value::as_array);
                let empty = content.is_none_or(|c| c.is_null() || c == "");
                if empty && tool_calls.is_none_or(Vec::is_empty) {
                    return Err(format!(
                        "'{at}' : an assistant message needs content or tool_calls"
                    ));
                }
                for call in tool_calls.into_iter().flatten() {
                    calls.push(check_call(&at, call)?);
                }
            }
            "tool" => {
                let id = message.get("tool_call_id").and_then(Value::as_str);
                if !id.is_some_and(|id| calls.contains(&id)) {
                    return Err(format!(
                        "'{at}.tool_call_id' : must answer a tool call of an earlier assistant message"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "'{at}.role' : value must be one of system, developer, user, assistant, tool (got {other})"
                ));
            }
        }
    }
    Ok(())
}

fn check_parts(at: &str, role: &str, parts: &[Value]) -> Result<(), String> {
    if parts.is_empty() {
        return Err(format!("'{at}.content' : must not be an empty array"));
    }
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") if part.get("text").is_some_and(Value::is_string) => {}
            Some("image_url") if role == "user" => {}
            _ => {
                return Err(format!(
                    "'{at}.content.{j}' : unsupported content part for role {role}"
                ));
            }
        }
    }
    Ok(())
}

fn check_call<'a>(at: &str, call: &'a Value) -> Result<&'a str, String> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or(format!("'{at}.tool_calls' : every call needs an id"))?;
    let function = call.get("function");
    let named = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let arguments = function
        .and_then(|f| f.get("arguments"))
        .and_then(Value::as_str)
        .and_then(|a| serde_json::from_str::<Value>(a).ok());
    if call.get("type").and_then(Value::as_str) != Some("function")
        || !named
        || !arguments.is_some_and(|a| a.is_object())
    {
        return Err(format!(
            "'{at}.tool_calls' : a call is {{id, type: function, function: {{name, arguments: JSON object as a string}}}}"
        ));
    }
    Ok(id)
}

fn check_tools(body: &serde_json::Map<String, Value>) -> Result<(), String> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => {
            if body.get("tool_choice").is_some_and(|c| !c.is_null()) {
                return Err("'tool_choice' is only allowed when 'tools' are specified".into());
            }
            return Ok(());
        }
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err("'tools' : value must be an array".into()),
    };
    for (i, tool) in tools.iter().enumerate() {
        let named = tool
            .pointer("/function/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let parameters = tool.pointer("/function/parameters");
        if tool.get("type").and_then(Value::as_str) != Some("function")
            || !named
            || parameters.is_some_and(|p| !p.is_object())
        {
            return Err(format!(
                "'tools.{i}' : a tool is {{type: function, function: {{name, parameters: object}}}}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn groq() -> Rules {
        Rules::Groq {
            api_key: "k".into(),
        }
    }

    #[test]
    fn groq_refuses_rigs_content_part_preamble_and_unsupported_fields() {
        let old = json!({"model": "m", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Eres un asistente."}]},
            {"role": "user", "content": "hola"}
        ]});
        assert_eq!(
            check(&groq(), &old).unwrap_err(),
            "'messages.0' : for 'role:system' the following must be satisfied[('messages.0.content' : value must be a string)]"
        );
        // A compatible server takes text parts.
        assert_eq!(check(&Rules::OpenAiCompatible, &old), Ok(()));
        let flat = json!({"model": "m", "messages": [
            {"role": "system", "content": "Eres un asistente."},
            {"role": "user", "content": [{"type": "text", "text": "hola"}]}
        ]});
        assert_eq!(check(&groq(), &flat), Ok(()));
        for (field, value) in [
            ("logprobs", json!(true)),
            ("logit_bias", json!({})),
            ("n", json!(2)),
        ] {
            let mut request = flat.clone();
            request[field] = value;
            assert!(check(&groq(), &request).is_err(), "{field}");
        }
        let mut named = flat.clone();
        named["messages"][1]["name"] = json!("ana");
        assert!(check(&groq(), &named).is_err());
    }

    #[test]
    fn the_compatible_rules_check_roles_calls_and_stream_options() {
        let call =
            json!({"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}});
        let ok = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [
            {"role": "user", "content": "hola"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"}
        ]});
        assert_eq!(check(&Rules::OpenAiCompatible, &ok), Ok(()));
        let mut orphan = ok.clone();
        orphan["messages"][2]["tool_call_id"] = json!("c2");
        assert!(check(&Rules::OpenAiCompatible, &orphan).is_err());
        let mut unstreamed = ok.clone();
        unstreamed["stream"] = json!(false);
        assert!(check(&Rules::OpenAiCompatible, &unstreamed).is_err());
        let mut unknown_role = ok;
        unknown_role["messages"][0]["role"] = json!("robot");
        assert!(check(&Rules::OpenAiCompatible, &unknown_role).is_err());
    }
}
