//! The rest of the API: models, versions, trainings, deployments, collections, hardware,
//! account, files, search and the webhook secret.
