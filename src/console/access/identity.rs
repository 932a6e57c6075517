//! Identity providers: the SCIM base URL to paste into Okta or Entra ID, and the SCIM tokens
//! they authenticate with: create (the secret shown once, on the answer page), list, revoke.

use crate::console::reports::format::when;
use crate::console::{Editor, FormErrors, Layout, PageError, render, render_status};
use crate::domain::admin::{ApiToken, TokenScope};
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

/// One token's line (no secret: only its first characters).
struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    created: String,
    created_by: String,
    last_used: String,
    revoked: String,
}

impl From<&ApiToken> for TokenRow {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created: when(t.created_at),
            created_by: t.created_by.clone(),
            last_used: t.last_used_at.map(when).unwrap_or_default(),
            revoked: t.revoked_at.map(when).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "access/identity.html")]
struct IdentityPage {
    layout: Layout,
    base_url: String,
    tokens: Vec<TokenRow>,
    name: String,
    errors: FormErrors,
    /// The new token's name and secret, on the answer to its creation only.
    created: Option<(String, String)>,
}

/// The SCIM base URL as this request reached the hub: `{scheme}://{host}/scim/v2`.
pub fn scim_base_url(headers: &HeaderMap, tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("provisio.example.com");
    format!("{}://{host}/scim/v2", if tls { "https" } else { "http" })
}

async fn page(
    editor: &Editor,
    headers: &HeaderMap,
    name: String,
    errors: FormErrors,
    created: Option<(String, String)>,
) -> Result<IdentityPage, PageError> {
    let tokens = editor.console.app.auth.list_tokens_of(TokenScope::Scim).await?;
    Ok(IdentityPage {
        layout: editor.layout("Identity providers", "identity"),
        base_url: scim_base_url(headers, editor.visit.secure),
        tokens: tokens.iter().map(TokenRow::from).collect(),
        name,
        errors,
        created,
    })
}

/// `GET /console/identity-providers`.
pub async fn list(editor: Editor, headers: HeaderMap) -> Result<Response, PageError> {
    let page = page(&editor, &headers, String::new(), FormErrors::default(), None).await?;
    Ok(render(&page))
}

/// The new token's form.
#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    name: String,
}

/// `POST /console/identity-providers`: issues a SCIM token and shows its secret this once.
pub async fn create(editor: Editor, headers: HeaderMap, Form(form): Form<NewToken>) -> Result<Response, PageError> {
    let issued = editor
        .console
        .app
        .auth
        .create_scim_token(&form.name, &editor.principal())
        .await;
    match issued {
        Ok(issued) => {
            let created = Some((issued.token.name.clone(), issued.secret.expose_secret().to_owned()));
            let page = page(&editor, &headers, String::new(), FormErrors::default(), created).await?;
            Ok(render_status(StatusCode::CREATED, &page))
        }
        Err(e) => {
            let errors = FormErrors::from_error(e, "name")?;
            let page = page(&editor, &headers, form.name, errors, None).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// `POST /console/identity-providers/{id}/revoke`: the token opens nothing from now on.
pub async fn revoke(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let id = Uuid::parse_str(&id).map_err(|_| crate::domain::Error::not_found("token", &id))?;
    let token = editor.console.app.auth.revoke_of(id, TokenScope::Scim).await?;
    Ok(editor.redirect(
        "/console/identity-providers",
        &format!(
            "The SCIM token '{}' was revoked: it opens nothing any more.",
            token.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_base_url_names_the_host_the_browser_used() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("hub.example.com:8443"));
        assert_eq!(scim_base_url(&headers, true), "https://hub.example.com:8443/scim/v2");
        headers.insert(header::HOST, HeaderValue::from_static("evil.com/<x>"));
        assert_eq!(scim_base_url(&headers, false), "http://provisio.example.com/scim/v2");
    }
}
