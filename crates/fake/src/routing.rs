//! Which endpoint a request on the API origin is for: prefix stripping, authentication and
//! routing. It knows the routes, not how they are served (see `api.rs`).

use hyper::{HeaderMap, Method};

use crate::state::Shared;

/// An API endpoint, after `/v1` (and the prefix) were stripped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    CreateModelPrediction(String),
    CreateVersionPrediction,
    CreateDeploymentPrediction(String),
    ListPredictions,
    GetPrediction(&'a str),
    CancelPrediction(&'a str),
    ListModels,
    CreateModel,
    SearchModels,
    GetModel(String),
    UpdateModel(String),
    DeleteModel(String),
    ListModelExamples(String),
    GetModelReadme(String),
    ListVersions(String),
    GetVersion(String, &'a str),
    DeleteVersion(String, &'a str),
    CreateTraining(String, &'a str),
    ListTrainings,
    GetTraining(&'a str),
    CancelTraining(&'a str),
    ListDeployments,
    CreateDeployment,
    GetDeployment(String),
    UpdateDeployment(String),
    DeleteDeployment(String),
    ListCollections,
    GetCollection(&'a str),
    Search,
    Account,
    WebhookSecret,
    Hardware,
    ListFiles,
    CreateFile,
    GetFile(&'a str),
    DeleteFile(&'a str),
    DownloadFile(&'a str),
    MethodNotAllowed,
    NotFound,
}

/// Maps a method and a path below `/v1` to an endpoint.
pub(crate) fn route<'a>(method: &Method, rest: &'a str) -> Route<'a> {
    let trimmed = rest.trim_matches('/');
    let segs: Vec<&'a str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    let m = method.as_str();
    let pick = |ok: bool, r: Route<'a>| if ok { r } else { Route::MethodNotAllowed };
    match segs.as_slice() {
        ["predictions"] if m == "POST" => Route::CreateVersionPrediction,
        ["predictions"] => pick(m == "GET", Route::ListPredictions),
        ["predictions", id] => pick(m == "GET", Route::GetPrediction(id)),
        ["predictions", id, "cancel"] => pick(m == "POST", Route::CancelPrediction(id)),
        ["models"] => match m {
            "GET" => Route::ListModels,
            "POST" => Route::CreateModel,
            "QUERY" => Route::SearchModels,
            _ => Route::MethodNotAllowed,
        },
        ["models", o, n] => {
            let name = format!("{o}/{n}");
            match m {
                "GET" => Route::GetModel(name),
                "PATCH" => Route::UpdateModel(name),
                "DELETE" => Route::DeleteModel(name),
                _ => Route::MethodNotAllowed,
            }
        }
        ["models", o, n, "predictions"] => pick(
            m == "POST",
            Route::CreateModelPrediction(format!("{o}/{n}")),
        ),
        ["models", o, n, "examples"] => {
            pick(m == "GET", Route::ListModelExamples(format!("{o}/{n}")))
        }
        ["models", o, n, "readme"] => pick(m == "GET", Route::GetModelReadme(format!("{o}/{n}"))),
        ["models", o, n, "versions"] => pick(m == "GET", Route::ListVersions(format!("{o}/{n}"))),
        ["models", o, n, "versions", v] => match m {
            "GET" => Route::GetVersion(format!("{o}/{n}"), v),
            "DELETE" => Route::DeleteVersion(format!("{o}/{n}"), v),
            _ => Route::MethodNotAllowed,
        },
        ["models", o, n, "versions", v, "trainings"] => {
            pick(m == "POST", Route::CreateTraining(format!("{o}/{n}"), v))
        }
        ["trainings"] => pick(m == "GET", Route::ListTrainings),
        ["trainings", id] => pick(m == "GET", Route::GetTraining(id)),
        ["trainings", id, "cancel"] => pick(m == "POST", Route::CancelTraining(id)),
        ["deployments"] => match m {
            "GET" => Route::ListDeployments,
            "POST" => Route::CreateDeployment,
            _ => Route::MethodNotAllowed,
        },
        ["deployments", o, n] => {
            let name = format!("{o}/{n}");
            match m {
                "GET" => Route::GetDeployment(name),
                "PATCH" => Route::UpdateDeployment(name),
                "DELETE" => Route::DeleteDeployment(name),
                _ => Route::MethodNotAllowed,
            }
        }
        ["deployments", o, n, "predictions"] => pick(
            m == "POST",
            Route::CreateDeploymentPrediction(format!("{o}/{n}")),
        ),
        ["collections"] => pick(m == "GET", Route::ListCollections),
        ["collections", slug] => pick(m == "GET", Route::GetCollection(slug)),
        ["search"] => pick(m == "GET", Route::Search),
        ["account"] => pick(m == "GET", Route::Account),
        ["webhooks", "default", "secret"] => pick(m == "GET", Route::WebhookSecret),
        ["hardware"] => pick(m == "GET", Route::Hardware),
        ["files"] if m == "POST" => Route::CreateFile,
        ["files"] => pick(m == "GET", Route::ListFiles),
        ["files", id] if m == "DELETE" => Route::DeleteFile(id),
        ["files", id] => pick(m == "GET", Route::GetFile(id)),
        ["files", id, "download"] => pick(m == "GET", Route::DownloadFile(id)),
        _ => Route::NotFound,
    }
}

/// The part of a path after `/v1` (and the prefix), if it is an API path.
pub(crate) fn api_rest<'a>(shared: &Shared, path: &'a str) -> Option<&'a str> {
    let prefix = shared.opts.prefix.as_str();
    let path = match path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => path,
    };
    let rest = path.strip_prefix("/v1")?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// What the API origin will do with a request, known from its head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Not under `/v1`: 404.
    NotApi,
    /// A missing or wrong token: 401.
    Unauthenticated,
    /// No such endpoint or method: 404 or 405.
    NoRoute,
    /// An endpoint the handlers serve.
    Served,
}

/// The path of an API request without the prefix (`/v1/...`), as real URLs in bodies name it.
pub(crate) fn api_path(shared: &Shared, path: &str) -> Option<String> {
    api_rest(shared, path).map(|rest| format!("/v1{rest}"))
}

/// Classifies a request on the API origin by its method, path and headers.
/// Whether the request creates a prediction (of a model, a version or a deployment): what
/// [`Options::create_rate_limit`](crate::Options::create_rate_limit) counts.
pub(crate) fn is_prediction_create(shared: &Shared, method: &Method, path: &str) -> bool {
    api_rest(shared, path).is_some_and(|rest| {
        matches!(
            route(method, rest),
            Route::CreateVersionPrediction
                | Route::CreateModelPrediction(_)
                | Route::CreateDeploymentPrediction(_)
        )
    })
}

pub(crate) fn classify(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap) -> Class {
    let Some(rest) = api_rest(shared, path) else {
        return Class::NotApi;
    };
    if !authorized(shared, headers) {
        return Class::Unauthenticated;
    }
    match route(method, rest) {
        Route::NotFound | Route::MethodNotAllowed => Class::NoRoute,
        _ => Class::Served,
    }
}

/// Whether the request carries the server's bearer token.
pub(crate) fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = v.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().unwrap_or("").trim();
    scheme.eq_ignore_ascii_case("bearer") && token == shared.opts.token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::POST, "/predictions"),
            Route::CreateVersionPrediction
        );
        assert_eq!(route(&Method::GET, "/predictions/"), Route::ListPredictions);
        assert_eq!(
            route(&Method::GET, "/predictions/abc"),
            Route::GetPrediction("abc")
        );
        assert_eq!(
            route(&Method::GET, "/predictions/abc/cancel"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(&Method::POST, "/models/a/b/predictions"),
            Route::CreateModelPrediction("a/b".into())
        );
        assert_eq!(
            route(&Method::GET, "/models/a/b/versions/x"),
            Route::GetVersion("a/b".into(), "x")
        );
        assert_eq!(route(&Method::GET, "/nope"), Route::NotFound);
        assert_eq!(route(&Method::DELETE, "/files/f1"), Route::DeleteFile("f1"));
    }

    #[test]
    fn routes_of_the_other_groups() {
        let query = Method::from_bytes(b"QUERY").expect("method");
        let m = |s: &str| Method::from_bytes(s.as_bytes()).expect("method");
        assert_eq!(route(&query, "/models"), Route::SearchModels);
        assert_eq!(route(&m("GET"), "/models/"), Route::ListModels);
        assert_eq!(route(&m("POST"), "/models"), Route::CreateModel);
        assert_eq!(route(&m("PUT"), "/models"), Route::MethodNotAllowed);
        assert_eq!(
            route(&m("PATCH"), "/models/a/b"),
            Route::UpdateModel("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/models/a/b"),
            Route::DeleteModel("a/b".into())
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/examples"),
            Route::ListModelExamples("a/b".into())
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/readme"),
            Route::GetModelReadme("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/models/a/b/versions/v"),
            Route::DeleteVersion("a/b".into(), "v")
        );
        assert_eq!(
            route(&m("POST"), "/models/a/b/versions/v/trainings"),
            Route::CreateTraining("a/b".into(), "v")
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/versions/v/trainings"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(&m("GET"), "/trainings"), Route::ListTrainings);
        assert_eq!(route(&m("GET"), "/trainings/t"), Route::GetTraining("t"));
        assert_eq!(
            route(&m("POST"), "/trainings/t/cancel"),
            Route::CancelTraining("t")
        );
        assert_eq!(route(&m("POST"), "/deployments"), Route::CreateDeployment);
        assert_eq!(
            route(&m("PATCH"), "/deployments/a/b"),
            Route::UpdateDeployment("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/deployments/a/b"),
            Route::DeleteDeployment("a/b".into())
        );
        assert_eq!(route(&m("GET"), "/collections"), Route::ListCollections);
        assert_eq!(
            route(&m("GET"), "/collections/c"),
            Route::GetCollection("c")
        );
        assert_eq!(route(&m("GET"), "/search"), Route::Search);
        assert_eq!(route(&m("POST"), "/search"), Route::MethodNotAllowed);
    }
}
