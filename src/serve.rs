//! `brama serve`: starts the security server with the router's routes mounted on its listeners
//! (and the router itself when `[router]` is on) and, in a build with the `sim` feature, the
//! registry simulator its configuration asks for. The gateway itself knows neither.
//!
//! A configuration with `[globalconf] anchor` runs from a downloaded global configuration:
//! [`prepare`] downloads it before the configuration is checked, from the test central server
//! of `[simulator.central]` when the file has one (the embedded default does).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigSource, ServerConf};
use crate::proxy::mount::Mount;
use crate::proxy::{self, Prebound, Running};
use crate::router::routes::Routes;
use crate::router::Router;

/// Starts every configured listener with the router's routes mounted, then the simulator of
/// `[simulator]` if it is enabled.
pub async fn start(conf: ServerConf, pre: Prebound) -> std::io::Result<Running> {
    let wants_sim = conf.file.simulator.as_ref().is_some_and(|s| s.enabled);
    #[cfg(not(feature = "sim"))]
    if wants_sim {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "[simulator] is enabled, but this build has no registry simulator (it comes with \
             the `sim` feature)",
        ));
    }
    let running = proxy::start_mounted(conf, pre, |gw, stop| async move {
        let router = match gw.conf().router.clone() {
            Some(rc) => Some(
                Router::start(&gw, rc, stop)
                    .await
                    .map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        let routes: Arc<dyn Mount> = Routes::new(router);
        Ok(Some(routes))
    })
    .await?;
    #[cfg(feature = "sim")]
    let running = match wants_sim {
        true => {
            let running = simulator::start(running).await?;
            // The simulator may be the test CA's OCSP responder: ask it now, not after a back-off.
            running.gateway.own_ocsp().refresh_now();
            running
        }
        false => running,
    };
    Ok(running)
}

/// What a configuration needs before it can be loaded: its global configuration downloaded
/// when it names an anchor and nothing is there yet (patience: `patience`). The test central
/// server of `[simulator.central]` is started first and returned, to keep serving refreshes
/// (`None` when there is none, or another process on this machine serves its address).
pub async fn prepare(
    path: Option<&Path>,
    patience: Duration,
) -> Result<Option<CentralServer>, String> {
    let (file, source) = crate::config::read_file(path).map_err(|e| e.to_string())?;
    let wants_sim = file.simulator.as_ref().is_some_and(|s| s.enabled);
    #[cfg(not(feature = "sim"))]
    if wants_sim {
        return Err(
            "[simulator] is enabled, but this build has no registry simulator (it comes \
                    with the `sim` feature)"
                .into(),
        );
    }
    let central_section = file
        .simulator
        .as_ref()
        .filter(|_| wants_sim)
        .and_then(|s| s.central.as_ref());
    let deadline = std::time::Instant::now() + patience;
    loop {
        let central = match central_section {
            #[cfg(feature = "sim")]
            Some(c) => simulator::start_central(c, &source).await?,
            _ => None,
        };
        // Another process serves the central server's address and may stop before this
        // download ends: try briefly, then try to serve it here.
        let borrowed = central_section.is_some() && central.is_none();
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let this_try = if borrowed {
            left.min(Duration::from_secs(3))
        } else {
            left
        };
        match crate::confclient::refresh::bootstrap_file(&file, &source, this_try).await {
            Ok(()) => return Ok(central),
            Err(e) if !borrowed || left <= this_try => return Err(e),
            Err(_) => {}
        }
    }
}

/// [`prepare`] for a command that only reads the configuration: on a thread of its own (so it
/// may be called from inside a runtime or outside one), and the central server it started, if
/// any, is stopped once the configuration is downloaded.
pub fn prepare_blocking(path: Option<&Path>) -> Result<(), String> {
    let needs = match crate::config::read_file(path) {
        Ok((file, source)) => needs_download(&file, &source),
        Err(_) => false, // Loading reports it.
    };
    if !needs {
        return Ok(());
    }
    let path = path.map(Path::to_path_buf);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(prepare(path.as_deref(), Duration::from_secs(30)))
            .map(drop)
    })
    .join()
    .map_err(|_| "the download thread panicked".to_string())?
}

fn needs_download(file: &crate::config::file::ConfigFile, source: &ConfigSource) -> bool {
    file.globalconf.anchor.is_some()
        && !crate::confclient::store::current(&source.path(&file.server.globalconf_dir))
            .join("instance-identifier")
            .is_file()
}

/// The test central server of `[simulator.central]`, serving until dropped.
pub struct CentralServer {
    pub addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[cfg(feature = "sim")]
mod simulator {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use brama_sim::{ConfigFiles, RegistrySim, SimConfig, SimStats};

    use crate::config::file::SimulatorSection;
    use crate::config::ConfigSource;
    use crate::proxy::{listener, Running};

    /// The gateway's configuration source as the simulator reads its files.
    struct Files<'a>(&'a ConfigSource);

    impl ConfigFiles for Files<'_> {
        fn dir(&self) -> Option<&Path> {
            match self.0 {
                ConfigSource::Dir(d) => Some(d),
                ConfigSource::Embedded => None,
            }
        }

        fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
            self.0.read(rel)
        }

        fn display(&self, rel: &str) -> String {
            self.0.display(rel)
        }
    }

    /// Adds the simulator to `running`; stops it if the simulator cannot start.
    pub(super) async fn start(mut running: Running) -> std::io::Result<Running> {
        match add(&mut running).await {
            Ok(()) => Ok(running),
            Err(e) => {
                running.shutdown().await;
                Err(e)
            }
        }
    }

    async fn add(running: &mut Running) -> std::io::Result<()> {
        let gw = running.gateway.clone();
        let Some(sim) = gw.conf().file.simulator.as_ref() else {
            return Ok(());
        };
        let files = Files(&gw.conf().source);
        let mut wsdls = brama_sim::load_wsdls(&files, &sim.wsdl_dir)?;
        if let Some(d) = &sim.openapi_dir {
            wsdls = wsdls.with_openapi(brama_sim::load_openapi(&files, d)?);
        }
        let ocsp = match &sim.ocsp_responder {
            Some(o) => Some(Arc::new(ocsp_responder(&files, o)?)),
            None => None,
        };
        let tsa = match &sim.tsa {
            Some(t) => Some(test_tsa(&files, t)?),
            None => None,
        };
        let cfg = SimConfig {
            ocsp,
            tsa,
            latency: Duration::from_millis(sim.latency_ms),
            error_rate: sim.error_rate,
            wsdls,
            dracs_processing: Duration::from_millis(sim.dracs_processing_ms),
            registries: registries(sim),
        };
        let l = listener::bind(&sim.listen, gw.conf().file.limits.listen_backlog).await?;
        tracing::info!(simulator = %l.local_addr()?, "registry simulator serving");
        running.spawn(|shutdown| async move {
            let stats = Arc::new(SimStats::default());
            if let Err(e) = brama_sim::serve(l, cfg, stats, shutdown).await {
                tracing::error!(error = %e, "registry simulator stopped");
            }
        });
        Ok(())
    }

    /// Starts the central server of `c`; `None` when its address is taken (a brama on this
    /// machine already publishes the same test network there).
    pub(super) async fn start_central(
        c: &crate::config::file::SimCentralSection,
        source: &crate::config::ConfigSource,
    ) -> Result<Option<super::CentralServer>, String> {
        let text = |rel: &str| {
            source
                .read(rel)
                .map_err(|e| format!("[simulator.central] {}: {e}", source.display(rel)))
                .and_then(|b| String::from_utf8(b).map_err(|_| format!("{rel}: not PEM")))
        };
        let read = |rel: &str| {
            let rel = format!("{}/{rel}", c.dir);
            source
                .read(&rel)
                .map_err(|e| format!("[simulator.central] {}: {e}", source.display(&rel)))
        };
        let publisher =
            brama_testkit::publish::Publisher::from_read(read, &text(&c.cert)?, &text(&c.key)?)?;
        let l = match tokio::net::TcpListener::bind(&c.listen).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(listen = %c.listen, "test central server's address is in use; downloading from whoever serves it");
                return Ok(None);
            }
            Err(e) => return Err(format!("[simulator.central] listen {}: {e}", c.listen)),
        };
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(brama_sim::serve_globalconf(
            l,
            Arc::new(publisher),
            async move {
                let _ = rx.await;
            },
        ));
        tracing::info!(%addr, "test central server publishing the global configuration (TEST ONLY)");
        Ok(Some(super::CentralServer { addr, _stop: tx }))
    }

    /// The test TSA of `[simulator.tsa]`.
    fn test_tsa(
        files: &Files<'_>,
        t: &crate::config::file::SimTsaSection,
    ) -> std::io::Result<Arc<dyn brama_testkit::tsa::TimeStampAuthority>> {
        let bad = |e: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("[simulator.tsa]: {e}"),
            )
        };
        let text = |rel: &str| {
            String::from_utf8(files.read(rel)?)
                .map_err(|_| bad(format!("{}: not PEM", files.display(rel))))
        };
        let tsa =
            brama_testkit::tsa::Tsa::from_pem(&text(&t.cert)?, &text(&t.key)?).map_err(bad)?;
        Ok(Arc::new(tsa))
    }

    /// The test responder of `[simulator.ocsp_responder]`.
    fn ocsp_responder(
        files: &Files<'_>,
        o: &crate::config::file::SimOcspSection,
    ) -> std::io::Result<brama_testkit::ocsp::Responder> {
        let text = |rel: &str| -> std::io::Result<String> {
            String::from_utf8(files.read(rel)?).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not PEM", files.display(rel)),
                )
            })
        };
        brama_testkit::ocsp::Responder::from_pem(
            &text(&o.ca_cert)?,
            &text(&o.cert)?,
            &text(&o.key)?,
        )
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("[simulator.ocsp_responder]: {e}"),
            )
        })
    }

    /// The per-registry settings as the simulator takes them.
    fn registries(sim: &SimulatorSection) -> std::collections::HashMap<String, RegistrySim> {
        let ms = Duration::from_millis;
        sim.registries
            .iter()
            .map(|(name, r)| {
                let outages = r
                    .outages
                    .iter()
                    .map(|o| (ms(o.from_ms), ms(o.until_ms)))
                    .collect();
                let reg = RegistrySim {
                    latency: r.latency_ms.map(ms),
                    error_rate: r.error_rate,
                    outages,
                };
                (name.clone(), reg)
            })
            .collect()
    }
}
