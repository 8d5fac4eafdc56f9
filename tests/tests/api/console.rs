//! The web console at `/console/`: served from the binary with strict
//! headers on every answer, fingerprinted assets cached for a year, the
//! entry page revalidated, compressed answers, and the per-address read
//! limit.

use tests::{TestApp, spawn_app, spawn_app_with};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map_or("", |value| value.to_str().unwrap())
}

fn assert_strict(response: &reqwest::Response) {
    assert_eq!(header(response, "content-security-policy"), CSP, "{}", response.url());
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
}

/// The entry page's asset URLs (stylesheet, icon, modules): `href` and `src` values under `/console/assets/`.
fn asset_urls(entry: &str) -> Vec<String> {
    entry.split(['"']).filter(|part| part.starts_with("/console/assets/")).map(str::to_owned).collect()
}

/// The entry page's HTML, after checking its headers.
async fn entry(app: &TestApp) -> String {
    let response = app.get("/console/").await;
    assert_eq!(response.status(), 200);
    assert_strict(&response);
    assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header(&response, "cache-control"),
        "no-cache",
        "the entry names the current fingerprint: always revalidated"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_entry_page_and_every_asset_are_served_with_strict_headers_and_fingerprints() {
    let app = spawn_app().await;
    let body = entry(&app).await;
    assert!(!body.contains("{{"), "placeholders are filled in");
    for script in body.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("type=\"module\" src=\"/console/assets/"),
            "no inline script: {script}"
        );
    }
    let urls = asset_urls(&body);
    assert!(urls.iter().any(|url| url.ends_with("/app.js")) && urls.iter().any(|url| url.ends_with("/style.css")));
    assert!(urls.iter().any(|url| url.ends_with("/lib/sign.js")), "every module is preloaded: {urls:?}");
    let fingerprint = urls[0].split('/').nth(3).unwrap().to_owned();
    assert!(fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{fingerprint}");
    for url in &urls {
        assert_eq!(url.split('/').nth(3), Some(fingerprint.as_str()), "one fingerprint for all: {url}");
        let response = app.get(url).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_strict(&response);
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        let expected = match url.rsplit_once('.').unwrap().1 {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(header(&response, "content-type"), expected, "{url}");
    }

    // Another fingerprint (an older deployment's), an unknown file, another page: 404, same headers, not cached.
    for path in [
        "/console/assets/0000000000000000/app.js".to_owned(),
        format!("/console/assets/{fingerprint}/missing.js"),
        format!("/console/assets/{fingerprint}/index.html"),
        "/console/elsewhere".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_strict(&response);
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
    }
    let response = app.http.get(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), 200, "/console redirects to /console/: {}", response.url());
    assert_eq!(response.url().path(), "/console/");
}

#[tokio::test]
async fn answers_are_compressed_as_the_browser_accepts() {
    let app = spawn_app().await;
    let body = entry(&app).await;
    let module = asset_urls(&body).into_iter().find(|url| url.ends_with("/lib/dom.js")).unwrap();
    let plain = app.get(&module).await;
    assert_eq!(header(&plain, "content-encoding"), "", "nothing accepted, nothing encoded");
    let plain = plain.bytes().await.unwrap();
    for (encoding, magic) in [("gzip", Some(&[0x1f_u8, 0x8b][..])), ("br", None)] {
        for path in [module.as_str(), "/console/"] {
            let response = app.http.get(app.url(path)).header("accept-encoding", encoding).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "content-encoding"), encoding, "{path}");
            assert!(header(&response, "vary").to_ascii_lowercase().contains("accept-encoding"), "{path}");
            assert_strict(&response);
            let bytes = response.bytes().await.unwrap();
            if let Some(magic) = magic {
                assert_eq!(&bytes[..2], magic);
            }
            if path == module {
                assert!(bytes.len() * 2 < plain.len(), "{encoding}: {} of {} bytes", bytes.len(), plain.len());
            }
        }
    }
}

#[tokio::test]
async fn console_reads_spend_the_addresss_read_tokens() {
    let app = spawn_app_with(|source, _| {
        source.set("RATE_LIMIT_READ_CAPACITY", "2");
        source.set("RATE_LIMIT_READ_REFILL_PER_MIN", "1");
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.get("/console/").await.status(), 200);
    }
    let limited = app.get("/console/").await;
    assert_eq!(limited.status(), 429, "a flood of console loads is limited like any read");
    assert!(header(&limited, "retry-after").parse::<u64>().unwrap() > 0);
    assert_strict(&limited);
    assert_eq!(app.get("/v1/agents/agt_00000000000000000000000000000000").await.status(), 429, "the same bucket");
}
