//! `brama serve`: starts the security server with the router's routes mounted on its listeners
//! (and the router itself when `[router]` is on) and, in a build with the `sim` feature, the
//! registry simulator its configuration asks for. The gateway itself knows neither.

use std::sync::Arc;

use crate::config::ServerConf;
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
        let cfg = SimConfig {
            ocsp,
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
