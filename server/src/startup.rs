//! Building the whole web server, the same way for `main` and for tests: the
//! orchestrator and its clients, the Leptos routes (page and server functions), the
//! REST API, `/metrics`, CORS, the 1 MB body limit, compression and cache
//! headers, and the span and timing of every request (`observe.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use app::backend::{Backend, BoxFuture, CheckoutBackend};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, Request};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use domain::{Catalog, CheckoutOutcome, CheckoutRequest, ClusterStatus, OrderStatus};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use platform::card_token::{FingerprintKey, DEVELOPMENT_KEY};
use platform::metrics::Registry;
use tokio::net::TcpListener;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::assets::AssetHashes;
use crate::config::Config;
use crate::link_seal::LinkSeal;
use crate::observe::HttpMetrics;
use crate::orchestrator::{Clients, Orchestrator};
use crate::rest;
use crate::status::StatusReader;

/// Request bodies above this size are refused with 413.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Everything the routes need: the checkout orchestration, the status reader and
/// the seal on result links.
#[derive(Clone)]
pub struct Shop {
    pub orchestrator: Arc<Orchestrator>,
    pub status: Arc<StatusReader>,
    pub link_seal: LinkSeal,
}

impl CheckoutBackend for Shop {
    fn checkout(&self, request: CheckoutRequest) -> BoxFuture<'_, CheckoutOutcome> {
        Box::pin(self.orchestrator.checkout(request))
    }

    fn order_status(&self, order_id: String) -> BoxFuture<'_, Result<Option<OrderStatus>, String>> {
        Box::pin(async move { self.status.order_status(&order_id).await })
    }

    fn cluster_status(&self) -> BoxFuture<'_, ClusterStatus> {
        Box::pin(self.status.cluster())
    }

    fn seal(&self, text: &str) -> String {
        self.link_seal.seal(text)
    }

    fn is_sealed(&self, text: &str, seal: &str) -> bool {
        self.link_seal.verifies(text, seal)
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    metrics: Registry,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds the routes.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let (key, link_seal) = match &config.card_fingerprint_key {
            Some(secret) => (FingerprintKey::new(secret), LinkSeal::new(secret)),
            // The development key is in the repository: sealing with it would let
            // anyone forge result links, so seal with a key of this process instead
            // (links then last until a restart).
            None => {
                tracing::warn!("CARD_FINGERPRINT_KEY is not set; using the development key for card fingerprints");
                (FingerprintKey::new(DEVELOPMENT_KEY), LinkSeal::new(uuid::Uuid::new_v4().as_bytes()))
            }
        };
        let metrics = Registry::for_process("web");
        let clients = Clients::new(&config.services, config.call_timeout())?;
        let orchestrator = Arc::new(
            Orchestrator::new(clients, Arc::new(Catalog::embedded()), key, &metrics)
                .admitting(config.checkout_limits()),
        );
        let status = Arc::new(StatusReader::new(&config.services, config.call_timeout())?);
        let shop = Shop { orchestrator, status, link_seal };
        let router = router(&config, shop, leptos_options(&config, address), &metrics)?;
        Ok(Self { listener, router, metrics })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The web server's metrics, served on `/metrics` (a binary adds its
    /// process's own).
    pub fn metrics(&self) -> &Registry {
        &self.metrics
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // Nagle's algorithm off, so small answers are not held back (see platform::grpc).
        let listener = self.listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await
    }
}

/// Leptos's options, from our configuration (the site root holds cargo-leptos's
/// output: `pkg/bookstore.<hash>.js`, `.wasm`, `.css` and the hash list).
fn leptos_options(config: &Config, address: SocketAddr) -> LeptosOptions {
    let hash_file = crate::assets::hash_file_path(&config.site_root);
    LeptosOptions::builder()
        .output_name("bookstore")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(address)
        // A site built without hashed names (no hash file) is served by plain names.
        .hash_files(hash_file.exists())
        .hash_file(hash_file.to_string_lossy().as_ref().into())
        .build()
}

pub fn router(config: &Config, shop: Shop, options: LeptosOptions, metrics: &Registry) -> anyhow::Result<Router> {
    let backend = Backend(Arc::new(shop.clone()) as Arc<dyn CheckoutBackend>);
    let context = move || provide_context(backend.clone());
    let shell = {
        let options = options.clone();
        move || app::shell(options.clone())
    };
    // `/orders/{id}` is both the order page (for browsers) and the REST resource
    // (for API clients): one route, chosen by the Accept header.
    let (order_page, pages): (Vec<_>, Vec<_>) =
        generate_route_list(app::App).into_iter().partition(|route| route.path().starts_with("/orders/"));
    let order_page = leptos_axum::render_route_with_context(order_page, context.clone(), shell.clone());
    let order = {
        let shop = shop.clone();
        move |State(options): State<LeptosOptions>, Path(order_id): Path<String>, request: Request<Body>| {
            let shop = shop.clone();
            let order_page = order_page.clone();
            async move {
                if app::api::accepts_html(request.headers()) {
                    order_page(State(options), request).await
                } else {
                    rest::order_status(&shop, &order_id).await
                }
            }
        }
    };
    let page = Router::new()
        .leptos_routes_with_context(&options, pages, context.clone(), shell)
        .route("/orders/{id}", get(order))
        .fallback(leptos_axum::file_and_error_handler_with_context(context, app::shell))
        .with_state(options);
    let api = Router::new()
        .route("/checkout", post(rest::checkout))
        .route("/api/cluster", get(rest::cluster))
        .route("/openapi.json", get(rest::openapi))
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .with_state(shop);
    let hashes = AssetHashes::read(&config.site_root);
    let mut router = api
        .merge(platform::metrics::router(metrics.clone()))
        .merge(page)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn(crate::api_errors::one_shape))
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::assets::cache_headers(hashes.clone(), request, next)
        }))
        // Pages and API answers; the page's files come compressed at build time
        // (a `.br`/`.gz` copy beside each), so a build without those copies (a
        // debug build's 8 MB wasm) is not compressed on every request either.
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/wasm"))),
        )
        // Outermost: the span and the timing cover everything above.
        .layer(axum::middleware::from_fn_with_state(HttpMetrics::register(metrics), crate::observe::observe));
    if !config.cors_allowed_origins.is_empty() {
        let origins = config
            .cors_allowed_origins
            .iter()
            .map(|origin| HeaderValue::from_str(origin.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::header::ACCEPT])
                .expose_headers([axum::http::HeaderName::from_static(crate::observe::TRACERESPONSE)]),
        );
    }
    Ok(router)
}
