//! Base URL normalisation, same-origin checks and token hygiene.
#![allow(clippy::unwrap_used)]

mod common;

use replicate_protocol::{
    ApiToken, BaseUrl, CancelPrediction, Config, CreatePrediction, DEFAULT_USER_AGENT, Endpoint,
    Error, GetPrediction, ListPredictions, Target,
};

fn norm(input: &str) -> String {
    BaseUrl::parse(input).unwrap().as_str().to_owned()
}

#[test]
fn base_url_drops_trailing_slash_and_v1() {
    for input in [
        "https://api.replicate.com",
        "https://api.replicate.com/",
        "https://api.replicate.com/v1",
        "https://api.replicate.com/v1/",
        "https://api.replicate.com//",
        "  https://api.replicate.com/v1/  ",
    ] {
        assert_eq!(norm(input), "https://api.replicate.com", "{input}");
    }
}

#[test]
fn base_url_keeps_a_path_prefix() {
    for input in [
        "https://proxy.example/replicate",
        "https://proxy.example/replicate/",
        "https://proxy.example/replicate/v1",
        "https://proxy.example/replicate/v1/",
    ] {
        let base = BaseUrl::parse(input).unwrap();
        assert_eq!(base.as_str(), "https://proxy.example/replicate", "{input}");
        assert_eq!(base.origin(), "https://proxy.example");
        assert_eq!(base.prefix(), "/replicate");
        assert_eq!(
            base.api_url("/predictions/abc"),
            "https://proxy.example/replicate/v1/predictions/abc"
        );
    }
    let nested = BaseUrl::parse("http://127.0.0.1:8080/a/b/v1").unwrap();
    assert_eq!(nested.as_str(), "http://127.0.0.1:8080/a/b");
    assert_eq!(nested.origin(), "http://127.0.0.1:8080");
    assert_eq!(nested.prefix(), "/a/b");
    // "v1" only counts as a whole last segment.
    assert_eq!(
        norm("https://proxy.example/apiv1"),
        "https://proxy.example/apiv1"
    );
}

#[test]
fn base_url_lowercases_scheme_and_host_not_path() {
    assert_eq!(
        norm("HTTPS://API.Replicate.COM/v1"),
        "https://api.replicate.com"
    );
    assert_eq!(
        norm("Http://Proxy.Example:8443/Replicate"),
        "http://proxy.example:8443/Replicate"
    );
    let public = BaseUrl::parse("https://api.replicate.com").unwrap();
    assert_eq!(public.prefix(), "");
    assert_eq!(public.to_string(), "https://api.replicate.com");
    assert_eq!(
        "https://API.replicate.com/v1/".parse::<BaseUrl>().unwrap(),
        public
    );
}

#[test]
fn base_url_rejections() {
    for input in [
        "ftp://proxy.example/replicate",
        "ws://proxy.example",
        "https://",
        "https:///replicate",
        "/replicate",
        "proxy.example/replicate",
        "api.replicate.com",
        "",
        "https://proxy.example/replicate?region=eu",
        "https://proxy.example/replicate?",
        "https://proxy.example/replicate#top",
        "https://user:secret@proxy.example/replicate",
        "https://r8_abc@proxy.example",
        "https://proxy example/replicate",
    ] {
        match BaseUrl::parse(input) {
            Err(Error::InvalidBaseUrl(_)) => {}
            other => panic!("{input:?} should be rejected, got {other:?}"),
        }
        assert!(
            Config::new("t").with_base_url(input).is_err(),
            "{input:?} accepted by Config"
        );
    }
}

#[test]
fn base_url_errors_do_not_echo_credentials() {
    let err = BaseUrl::parse("https://alice:hunter2@proxy.example/replicate").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    let err = BaseUrl::parse("https://r8_SECRETTOKEN@proxy.example").unwrap_err();
    assert!(!err.to_string().contains("r8_SECRETTOKEN"), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid base URL \"https://***@proxy.example\": credentials in the URL are not allowed; pass a token instead"
    );
    // Other errors still show the input, which helps.
    let err = BaseUrl::parse("ftp://proxy.example").unwrap_err();
    assert!(err.to_string().contains("ftp://proxy.example"), "{err}");
}

#[test]
fn same_origin_checks() {
    let base = BaseUrl::parse("https://proxy.example/replicate").unwrap();
    let yes = [
        "https://proxy.example/replicate/v1/predictions/abc",
        "https://proxy.example/elsewhere",
        "https://PROXY.EXAMPLE/replicate",
        "HTTPS://proxy.example:443/replicate/v1/files/x",
    ];
    let no = [
        "http://proxy.example/replicate/v1/predictions/abc",
        "https://api.replicate.com/v1/predictions/abc",
        "https://stream.replicate.com/v1/files/bcwr-abc",
        "https://proxy.example:8443/replicate",
        "https://proxy.example.evil.com/replicate",
        "https://evil.example/?https://proxy.example",
        "https://user@proxy.example/replicate",
        "/replicate/v1/predictions",
        "proxy.example/replicate",
        "not a url",
        "",
    ];
    for url in yes {
        assert!(base.is_same_origin(url), "{url} should be same-origin");
    }
    for url in no {
        assert!(!base.is_same_origin(url), "{url} should not be same-origin");
    }
    let local = BaseUrl::parse("http://localhost:8080").unwrap();
    assert!(local.is_same_origin("http://localhost:8080/v1/predictions"));
    assert!(!local.is_same_origin("http://localhost/v1/predictions"));
    assert!(!local.is_same_origin("http://localhost:8081/v1/predictions"));
    let default_port = BaseUrl::parse("https://api.replicate.com:443/v1").unwrap();
    assert!(default_port.is_same_origin("https://api.replicate.com/v1/predictions"));
    let plain = BaseUrl::parse("http://proxy.example").unwrap();
    assert!(plain.is_same_origin("http://proxy.example:80/x"));
    assert!(!plain.is_same_origin("https://proxy.example/x"));
}

#[test]
fn config_defaults_and_builders() {
    let cfg = Config::new("r8_token");
    assert_eq!(cfg.base_url().as_str(), "https://api.replicate.com");
    assert_eq!(cfg.user_agent(), DEFAULT_USER_AGENT);
    assert!(DEFAULT_USER_AGENT.starts_with("replicate-rust/"));
    assert_eq!(cfg.token().expose(), "r8_token");
    let proxied = cfg
        .with_base_url("https://proxy.example/replicate/v1/")
        .unwrap();
    assert_eq!(proxied.token().expose(), "r8_token");
    assert_eq!(proxied.base_url().prefix(), "/replicate");
    let other = proxied
        .with_token("hk-other")
        .with_user_agent("app/1")
        .unwrap();
    assert_eq!(other.token().expose(), "hk-other");
    assert_eq!(other.base_url().as_str(), "https://proxy.example/replicate");
    assert_eq!(other.user_agent(), "app/1");
    assert!(matches!(
        cfg.with_user_agent("bad\nagent"),
        Err(Error::InvalidInput(_))
    ));
    // The original is untouched.
    assert_eq!(cfg.base_url().as_str(), "https://api.replicate.com");

    let req = GetPrediction::new("abc").request(&other).unwrap();
    assert_eq!(req.headers()["authorization"], "Bearer hk-other");
    assert_eq!(req.headers()["user-agent"], "app/1");
    assert_eq!(req.headers()["accept"], "application/json");
    assert!(req.headers().get("content-type").is_none());
}

const SECRET: &str = "r8_Zx9SuperSecretToken0123456789";

#[test]
fn token_never_in_debug() {
    let token = ApiToken::new(SECRET);
    assert_eq!(format!("{token:?}"), "ApiToken(***)");
    assert_eq!(token.to_string(), "***");
    let cfg = Config::new(SECRET)
        .with_base_url("https://proxy.example/replicate")
        .unwrap();
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(SECRET), "{dbg}");
    assert!(dbg.contains("https://proxy.example/replicate"), "{dbg}");

    let requests = [
        GetPrediction::new("abc").request(&cfg).unwrap(),
        CancelPrediction::new("abc").request(&cfg).unwrap(),
        ListPredictions::new().request(&cfg).unwrap(),
        CreatePrediction::new(Target::parse("a/b").unwrap())
            .request(&cfg)
            .unwrap(),
    ];
    for req in &requests {
        // The token is sent...
        assert_eq!(
            req.headers()["authorization"].to_str().unwrap(),
            format!("Bearer {SECRET}")
        );
        assert!(req.headers()["authorization"].is_sensitive());
        // ... but never shown.
        let dbg = format!("{req:?}");
        assert!(!dbg.contains(SECRET), "{dbg}");
        let dbg = format!("{:?}", req.headers());
        assert!(!dbg.contains(SECRET), "{dbg}");
    }
}

#[test]
fn token_never_in_errors() {
    // Errors of every layer built around a request with this token.
    let cfg = Config::new(SECRET);
    let err = GetPrediction::new("").request(&cfg).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(SECRET));
    let bad = Config::new(format!("{SECRET}\n"));
    let err = GetPrediction::new("abc").request(&bad).unwrap_err();
    assert_eq!(err, Error::InvalidToken);
    assert!(!format!("{err} {err:?}").contains(SECRET));
    assert!(!format!("{bad:?}").contains(SECRET));
}

#[test]
fn invalid_token_characters() {
    for token in [
        "r8_abc\ndef",
        "r8_abc\r\n",
        "r8_\0",
        "r8_abc\u{7f}",
        "r8_tab\there",
        "r8_tökén",
        "hk-\u{1F600}",
    ] {
        let cfg = Config::new(token);
        for result in [
            GetPrediction::new("abc").request(&cfg),
            CreatePrediction::new(Target::parse("a/b").unwrap()).request(&cfg),
        ] {
            assert_eq!(result.unwrap_err(), Error::InvalidToken, "{token:?}");
        }
    }
    // Any other printable ASCII is fine.
    for token in ["r8_abc", "hk-your-key", "a.b~c+d/e=", "x y"] {
        assert!(
            GetPrediction::new("abc")
                .request(&Config::new(token))
                .is_ok(),
            "{token:?}"
        );
    }
}

#[test]
fn ids_are_percent_encoded_path_segments() {
    let cfg = common::proxy_cfg();
    let req = GetPrediction::new("../../v1/account?x=1")
        .request(&cfg)
        .unwrap();
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/predictions/..%2F..%2Fv1%2Faccount%3Fx%3D1"
    );
    // Empty and dot-segment ids would name another resource.
    for id in ["", ".", ".."] {
        assert!(
            matches!(
                CancelPrediction::new(id).request(&cfg),
                Err(Error::InvalidInput(_))
            ),
            "{id:?}"
        );
        assert!(
            matches!(
                GetPrediction::new(id).request(&cfg),
                Err(Error::InvalidInput(_))
            ),
            "{id:?}"
        );
    }
    assert_eq!(
        GetPrediction::new("...").request(&cfg).unwrap().uri(),
        "https://proxy.example/replicate/v1/predictions/..."
    );
}
