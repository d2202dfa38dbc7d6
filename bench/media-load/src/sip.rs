//! SIP for the load generator, on rsipstack as the node itself is: the carrier (one agent on
//! one address, placing every caller's INVITE) and the agents' phones (one agent on another
//! address, registering every device with its digest credentials and answering every INVITE
//! the node rings a phone with). Many registrations from one address and port are what a
//! SIP trunk or an office behind one NAT address look like to the node; the node rings each
//! device at the address its REGISTER came from.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Header, Method, StatusCode, StatusCodeKind};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::SipAddr;
use tokio_util::sync::CancellationToken;

/// How long one INVITE or REGISTER may take before it counts as failed.
const ANSWER_WAIT: Duration = Duration::from_secs(8);

/// One SIP user agent on one UDP address (the demo's), and `sip:` URIs read as it reads them.
pub use callfleet::cli::demo::sip::{uri, Ua};

/// Our SDP: PCMU at 20 ms on `rtp`, RTCP muxed on the same port (so it never goes to a port
/// nobody listens on), telephone-event offered as phones do.
pub fn sdp(rtp: SocketAddr, session: u64) -> Vec<u8> {
    let ip = rtp.ip();
    format!(
        "v=0\r\no=mediaload {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n",
        port = rtp.port()
    )
    .into_bytes()
}

/// The RTP address of an SDP body.
pub fn media_addr(body: &[u8]) -> anyhow::Result<SocketAddr> {
    let offer =
        callfleet::media::sdp::parse_offer(body).map_err(|e| anyhow::anyhow!("SDP: {e}"))?;
    offer.remote.context("SDP without a media address")
}

/// A call the node answered.
pub struct Answered {
    pub dialog: InviteDialog,
    pub states: DialogStateReceiver,
    /// Where the node takes this call's RTP.
    pub node_media: SocketAddr,
    /// INVITE sent to 200 OK received.
    pub setup: Duration,
}

/// Sends one caller's INVITE for `service` to `node`, offering RTP at `rtp`.
pub async fn invite(
    ua: &Ua,
    node: SocketAddr,
    service: &str,
    caller: &str,
    call_id: &str,
    rtp: SocketAddr,
) -> anyhow::Result<Answered> {
    let opt = InviteOption {
        caller: ua.uri(caller)?,
        callee: uri(&format!("sip:{service}@{node}"))?,
        destination: Some(SipAddr {
            r#type: None,
            addr: node.into(),
        }),
        content_type: Some("application/sdp".into()),
        offer: Some(sdp(rtp, rand::random::<u32>().into())),
        contact: ua.uri(caller)?,
        call_id: Some(call_id.to_owned()),
        ..Default::default()
    };
    let (state_tx, states) = ua.dialogs.new_dialog_state_channel();
    let started = Instant::now();
    let sent = tokio::time::timeout(ANSWER_WAIT, ua.dialogs.do_invite(opt, state_tx)).await;
    let (dialog, resp) = match sent {
        Ok(Ok((dialog, Some(resp)))) => (dialog, resp),
        Ok(Ok((_, None))) => bail!("no final response"),
        Ok(Err(e)) => bail!("INVITE failed: {e}"),
        Err(_) => bail!("no answer within {ANSWER_WAIT:?}"),
    };
    let setup = started.elapsed();
    if resp.status_code.kind() != StatusCodeKind::Successful {
        bail!("answered {}", resp.status_code);
    }
    let node_media = media_addr(&resp.body)?;
    Ok(Answered {
        dialog,
        states,
        node_media,
        setup,
    })
}

/// Hangs up an answered dialog (BYE), bounded in time.
pub async fn hang_up(dialog: &InviteDialog) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), dialog.bye()).await,
        Ok(Ok(_))
    )
}

/// Waits for a dialog's end, answering in-dialog OPTIONS and INFO on the way; true when the
/// far end ended it.
pub async fn wait_end(states: &mut DialogStateReceiver) -> bool {
    while let Some(st) = states.recv().await {
        match st {
            DialogState::Terminated(..) => return true,
            DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                // Best effort: the node only probes.
                if let Err(e) = handle.reply(StatusCode::OK).await {
                    eprintln!("in-dialog answer not sent: {e}");
                }
            }
            _ => {}
        }
    }
    false
}

/// Registers `ext` (password `password`) with `node` from `ua`, for `expires` seconds.
pub async fn register(
    ua: &Ua,
    node: SocketAddr,
    ext: &str,
    password: &str,
    expires: u32,
) -> anyhow::Result<()> {
    let credential = Credential {
        username: ext.to_owned(),
        password: password.to_owned(),
        realm: None,
        auth_username: None,
    };
    let mut reg = Registration::new(ua.endpoint.clone(), Some(credential));
    let server = uri(&format!("sip:{node}"))?;
    let resp = tokio::time::timeout(ANSWER_WAIT, reg.register(server, Some(expires)))
        .await
        .with_context(|| format!("REGISTER {ext}: no answer"))?
        .with_context(|| format!("REGISTER {ext}"))?;
    if resp.status_code != StatusCode::OK {
        bail!("REGISTER {ext}: {}", resp.status_code);
    }
    Ok(())
}

/// Counters of the phones.
#[derive(Debug, Default)]
pub struct PhoneCounts {
    pub rung: AtomicU64,
    pub answered: AtomicU64,
    pub ended: AtomicU64,
    pub refused: AtomicU64,
}

/// Answers every new INVITE at once: `media(node_addr)` gives the local RTP address for the
/// node's leg at `node_addr` (and starts its streams). In-dialog requests go to their
/// dialogs. Runs until `stop`.
pub async fn serve_phones<F>(
    ua: Arc<Ua>,
    mut incoming: TransactionReceiver,
    media: Arc<F>,
    counts: Arc<PhoneCounts>,
    stop: CancellationToken,
) where
    F: Fn(SocketAddr) -> SocketAddr + Send + Sync + 'static,
{
    loop {
        let tx = tokio::select! {
            tx = incoming.recv() => tx,
            _ = stop.cancelled() => None,
        };
        let Some(tx) = tx else { return };
        let (ua, media, counts) = (ua.clone(), media.clone(), counts.clone());
        tokio::spawn(async move { phone_request(ua, tx, media, counts).await });
    }
}

async fn phone_request<F>(ua: Arc<Ua>, mut tx: Transaction, media: Arc<F>, counts: Arc<PhoneCounts>)
where
    F: Fn(SocketAddr) -> SocketAddr + Send + Sync + 'static,
{
    if let Some(mut dialog) = ua.dialogs.match_dialog(&tx) {
        // An in-dialog request the dialog answers itself (the node's BYE).
        if let Err(e) = dialog.handle(&mut tx).await {
            eprintln!("in-dialog request failed: {e}");
        }
        return;
    }
    let status = match tx.original.method {
        Method::Invite => return answer(ua, tx, media, counts).await,
        Method::Ack => return,
        Method::Options => StatusCode::OK,
        Method::Bye | Method::Cancel => StatusCode::CallTransactionDoesNotExist,
        _ => StatusCode::MethodNotAllowed,
    };
    reply(&mut tx, status).await;
}

async fn answer<F>(ua: Arc<Ua>, mut tx: Transaction, media: Arc<F>, counts: Arc<PhoneCounts>)
where
    F: Fn(SocketAddr) -> SocketAddr + Send + Sync + 'static,
{
    counts.rung.fetch_add(1, Ordering::Relaxed);
    let node_media = match media_addr(tx.original.body()) {
        Ok(a) => a,
        Err(_) => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            reply(&mut tx, StatusCode::NotAcceptableHere).await;
            return;
        }
    };
    let (state_tx, mut states) = ua.dialogs.new_dialog_state_channel();
    let user = tx
        .original
        .uri
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_else(|| "phone".into());
    let contact = ua.uri(&user).ok();
    let dialog = match ua
        .dialogs
        .get_or_create_server_invite(&tx, state_tx, None, contact)
    {
        Ok(d) => d,
        Err(_) => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            reply(&mut tx, StatusCode::ServerInternalError).await;
            return;
        }
    };
    let mut runner = dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = runner.handle(&mut tx).await {
            eprintln!("INVITE transaction failed: {e}");
        }
    });
    let local = media(node_media);
    let body = sdp(local, rand::random::<u32>().into());
    let ct = Header::ContentType("application/sdp".into());
    if dialog.accept(Some(vec![ct]), Some(body)).is_err() {
        counts.refused.fetch_add(1, Ordering::Relaxed);
        ua.dialogs.remove_dialog(&dialog.id());
        return;
    }
    counts.answered.fetch_add(1, Ordering::Relaxed);
    wait_end(&mut states).await;
    counts.ended.fetch_add(1, Ordering::Relaxed);
    ua.dialogs.remove_dialog(&dialog.id());
}

/// Serves what reaches the carrier outside its calls' own transactions: in-dialog requests
/// (the node's BYE) go to their dialog; anything else gets `481` or `405`.
pub async fn serve_carrier(
    ua: Arc<Ua>,
    mut incoming: TransactionReceiver,
    stop: CancellationToken,
) {
    loop {
        let tx = tokio::select! {
            tx = incoming.recv() => tx,
            _ = stop.cancelled() => None,
        };
        let Some(mut tx) = tx else { return };
        let ua = ua.clone();
        tokio::spawn(async move {
            if let Some(mut dialog) = ua.dialogs.match_dialog(&tx) {
                if let Err(e) = dialog.handle(&mut tx).await {
                    eprintln!("in-dialog request failed: {e}");
                }
                return;
            }
            let status = match tx.original.method {
                Method::Ack => return,
                Method::Options => StatusCode::OK,
                Method::Invite | Method::Bye | Method::Cancel => {
                    StatusCode::CallTransactionDoesNotExist
                }
                _ => StatusCode::MethodNotAllowed,
            };
            reply(&mut tx, status).await;
        });
    }
}

/// Sends a final response outside a dialog; a failure is reported (the call it belongs to is
/// then counted as failed by whoever waits for it).
async fn reply(tx: &mut Transaction, status: StatusCode) {
    if let Err(e) = tx.reply(status.clone()).await {
        eprintln!("{status} not sent: {e}");
    }
}
