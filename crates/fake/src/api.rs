//! The API origin's router: authenticates, routes, and hands each endpoint to its handler
//! module. It holds no handler logic itself.
//!
//! To add an endpoint: add a [`Route`] variant and match it in [`route`] (`routing.rs`), write
//! its handler in the module of its group, and dispatch it in [`dispatch`].

use std::sync::Arc;

use serde_json::json;

use crate::http::Resp;
use crate::predictions::Target;
use crate::request::Req;
use crate::routing::{Route, api_rest, authorized, route};
use crate::state::Shared;
use crate::{account, catalog, deployments, predictions, trainings, uploads};

/// Handles a request on the API origin.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req) -> Resp {
    let Some(rest) = api_rest(shared, &req.path) else {
        return Resp::not_found();
    };
    if !authorized(shared, &req.headers) {
        return Resp::problem(
            401,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        );
    }
    let r = route(&req.method, rest);
    dispatch(shared, req, r).await
}

/// Hands a routed request to its handler.
async fn dispatch(shared: &Arc<Shared>, req: &Req, r: Route<'_>) -> Resp {
    match r {
        Route::CreateModelPrediction(name) => {
            predictions::create(shared, req, Target::Model(name)).await
        }
        Route::CreateVersionPrediction => predictions::create(shared, req, Target::Version).await,
        Route::CreateDeploymentPrediction(name) => {
            predictions::create(shared, req, Target::Deployment(name)).await
        }
        Route::ListPredictions => predictions::list(shared, req),
        Route::GetPrediction(id) => predictions::get(shared, id),
        Route::CancelPrediction(id) => predictions::cancel(shared, id),
        Route::ListModels => catalog::list_models(shared, req),
        Route::CreateModel => catalog::create_model(shared, req),
        Route::SearchModels => catalog::search_models(shared, req),
        Route::GetModel(name) => catalog::get_model(shared, &name),
        Route::UpdateModel(name) => catalog::update_model(shared, req, &name),
        Route::DeleteModel(name) => catalog::delete_model(shared, &name),
        Route::ListModelExamples(name) => catalog::list_examples(shared, req, &name),
        Route::GetModelReadme(name) => catalog::get_readme(shared, &name),
        Route::ListVersions(name) => catalog::list_versions(shared, req, &name),
        Route::GetVersion(name, v) => catalog::get_version(shared, &name, v),
        Route::DeleteVersion(name, v) => catalog::delete_version(shared, &name, v),
        Route::CreateTraining(name, v) => trainings::create(shared, req, &name, v),
        Route::ListTrainings => trainings::list(shared, req),
        Route::GetTraining(id) => trainings::get(shared, id),
        Route::CancelTraining(id) => trainings::cancel(shared, id),
        Route::ListDeployments => deployments::list(shared, req),
        Route::CreateDeployment => deployments::create(shared, req),
        Route::GetDeployment(name) => deployments::get(shared, &name),
        Route::UpdateDeployment(name) => deployments::update(shared, req, &name),
        Route::DeleteDeployment(name) => deployments::delete(shared, &name),
        Route::ListCollections => catalog::list_collections(shared, req),
        Route::GetCollection(slug) => catalog::get_collection(shared, slug),
        Route::Search => catalog::search(shared, req),
        Route::Account => Resp::json(200, &account::account_json()),
        Route::WebhookSecret => Resp::json(200, &json!({"key": shared.opts.webhook_secret})),
        Route::Hardware => Resp::json(200, &account::hardware_json()),
        Route::ListFiles => uploads::list_files(shared, req),
        Route::CreateFile => uploads::create_file(shared, req),
        Route::GetFile(id) => uploads::get_file(shared, id),
        Route::DeleteFile(id) => uploads::delete_file(shared, id),
        Route::DownloadFile(id) => uploads::download_file(shared, req, id),
        Route::MethodNotAllowed => Resp::problem(
            405,
            "Method not allowed",
            &format!("Method {} is not allowed on this endpoint", req.method),
        ),
        Route::NotFound => Resp::not_found(),
    }
}
