//! The console's static files, compiled into the binary and served under names that carry a hash
//! of their content, so that browsers may cache them for good.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// One compiled-in file.
#[derive(Debug)]
pub struct Asset {
    /// The name pages link to: `<stem>.<hash>.<ext>`.
    pub url_name: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its content.
    pub bytes: &'static [u8],
}

/// Every file the console serves.
#[derive(Debug)]
pub struct Assets {
    /// The style sheet.
    pub css: Asset,
    /// The console's script.
    pub js: Asset,
    /// The favicon.
    pub icon: Asset,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let digest = Sha256::digest(bytes);
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Asset {
        url_name: format!("{stem}.{hash}.{ext}"),
        content_type,
        bytes,
    }
}

impl Assets {
    /// Hashes the compiled-in files.
    pub fn load() -> Self {
        Self {
            css: asset(
                "console",
                "css",
                "text/css; charset=utf-8",
                include_bytes!("../../assets/console.css"),
            ),
            js: asset(
                "console",
                "js",
                "text/javascript; charset=utf-8",
                include_bytes!("../../assets/console.js"),
            ),
            icon: asset("icon", "svg", "image/svg+xml", include_bytes!("../../assets/icon.svg")),
        }
    }

    /// The URL of an asset.
    pub fn url(asset: &Asset) -> String {
        format!("/console/assets/{}", asset.url_name)
    }

    fn find(&self, name: &str) -> Option<(&Asset, bool)> {
        let all = [&self.css, &self.js, &self.icon];
        if let Some(asset) = all.iter().find(|a| a.url_name == name) {
            return Some((asset, true));
        }
        // The plain name (`console.css`), for pages rendered without the asset table (errors).
        all.into_iter()
            .find(|a| plain_name(&a.url_name) == name)
            .map(|asset| (asset, false))
    }

    /// Total bytes of every asset a page loads.
    pub fn page_weight(&self) -> usize {
        self.css.bytes.len() + self.js.bytes.len() + self.icon.bytes.len()
    }
}

/// `console.1a2b3c.css` -> `console.css`.
fn plain_name(url_name: &str) -> String {
    let mut parts: Vec<&str> = url_name.split('.').collect();
    if parts.len() == 3 {
        parts.remove(1);
    }
    parts.join(".")
}

/// `GET /console/assets/{name}`: a hashed name is immutable and cached for a year.
pub async fn serve(State(assets): State<Arc<Assets>>, Path(name): Path<String>) -> Response {
    match assets.find(&name) {
        Some((asset, hashed)) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (
                    header::CACHE_CONTROL,
                    if hashed {
                        "public, max-age=31536000, immutable"
                    } else {
                        "no-cache"
                    },
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
