//! The blocking client: one server, one session at a time, reconnected when closed.

use crate::{ClientError, Connection, Connector, Prediction};
use ward_attest::VerifiedClaims;

/// A blocking client of one server. The first call connects (verifying the server in the
/// handshake); later calls reuse the session while the server keeps it open, and reconnect,
/// verifying again, when it does not.
pub struct Client {
    server: String,
    connector: Connector,
    runtime: tokio::runtime::Runtime,
    connection: Option<Connection>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `server` (`HOST:PORT`, checked now); nothing is sent until the first call.
    pub fn new(server: &str, connector: Connector) -> Result<Client, ClientError> {
        crate::host_of(server)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(Client {
            server: server.to_owned(),
            connector,
            runtime,
            connection: None,
        })
    }

    /// The open session, connecting first if there is none or the server closed it.
    fn session(&mut self) -> Result<&mut Connection, ClientError> {
        if !self.connection.as_ref().is_some_and(Connection::is_open) {
            self.connection = None;
            let connection = self
                .runtime
                .block_on(self.connector.connect(&self.server))?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// Verifies the server (connecting if needed) and returns what its evidence proved.
    pub fn attest(&mut self) -> Result<VerifiedClaims, ClientError> {
        Ok(self.session()?.claims().clone())
    }

    /// The server's RA-TLS certificate (DER) of the current session (connecting if needed).
    pub fn certificate(&mut self) -> Result<Vec<u8>, ClientError> {
        Ok(self.session()?.certificate().to_vec())
    }

    /// Classifies `image` (PNG, JPEG, GIF or WebP bytes): the `top_k` most probable classes.
    pub fn classify(&mut self, image: &[u8], top_k: usize) -> Result<Vec<Prediction>, ClientError> {
        self.session()?;
        let connection = self.connection.as_mut().expect("connected above");
        let result = self.runtime.block_on(connection.classify(image, top_k));
        self.forget_broken(&result);
        result
    }

    /// `GET /v1/health`.
    pub fn health(&mut self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/health")
    }

    /// `GET path` as JSON (e.g. `/v1/attestation`, `/v1/openapi.json`).
    pub fn get_json(&mut self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.session()?;
        let connection = self.connection.as_mut().expect("connected above");
        let result = self.runtime.block_on(connection.get_json(path));
        self.forget_broken(&result);
        result
    }

    /// A session that failed mid-exchange is not reused.
    fn forget_broken<T>(&mut self, result: &Result<T, ClientError>) {
        if matches!(
            result,
            Err(ClientError::Http { .. } | ClientError::Timeout { .. })
        ) {
            self.connection = None;
        }
    }
}
