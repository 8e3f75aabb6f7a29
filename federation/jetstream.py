"""The transport port over NATS JetStream (nats-py): the one module that imports the driver.
Every call into nats-py runs inside ``mapped()``, which turns the driver's errors, the
network's (OSError) and timeouts into TransportError, the way httpx maps httpcore's; what the
server refused (its authorization, a permission, TLS) comes out as Refused, naming it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError, ServiceUnavailableError

from domain.i18n import Text, _
from federation.transport import (
    DUPLICATE_WINDOW,
    RETENTION,
    SUBJECTS,
    UP,
    Connection,
    Consumer,
    ConsumerSpec,
    Credentials,
    Delivery,
    Handler,
    Message,
    Refused,
    Served,
    StreamState,
    Transport,
    TransportError,
    inbox,
)

log = logging.getLogger("anjian.federation")


class _QuietTLSClose(logging.Filter):
    """asyncio's streams keep a connection open after the peer's end of stream, and its TLS
    layer then warns that this has no effect, each time a TLS server goes away (a restart, a
    reload): nothing an operator can act on, so it is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "has no effect when using ssl" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_QuietTLSClose())
T = TypeVar("T")

# What can go wrong on a NATS connection, all of it TransportError once through mapped().
NATS_ERRORS: tuple[type[BaseException], ...] = (NatsError, OSError, asyncio.TimeoutError)
# what the server says when it refuses a client, or something a client asked for
REFUSALS = ("authorization violation", "permissions violation")


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    """Translate the driver's errors at the boundary: what is raised out of a call into
    nats-py inside this block is TransportError (the original as its cause)."""
    try:
        yield
    except NATS_ERRORS as e:
        if isinstance(e, ssl.SSLError):
            raise Refused(_tls_failure(e)) from e
        if _is_refusal(_describe(e)):
            raise Refused(_refusal(_describe(e))) from e
        raise TransportError(_said(e)) from e


def _said(error: BaseException) -> str | Text:
    """What an error says: ours as the Text it carries (read in the reader's language), the
    driver's and the network's in their own words."""
    if error.args and isinstance(error.args[0], Text):
        return error.args[0]
    return _describe(error)


def _describe(error: BaseException) -> str:
    try:
        return str(error) or type(error).__name__
    except Exception:  # some of nats-py's errors cannot say what they are when half-made
        return type(error).__name__


def _is_refusal(text: str) -> bool:
    return any(r in text.lower() for r in REFUSALS)


def _refusal(text: str) -> Text:
    """What the server refused, and what to do (``text``: the server's words)."""
    text = text.removeprefix("nats: ").strip("'")
    if "authorization violation" in text.lower():
        return _(
            "the NATS server refused this node's credentials ({error}): it authorises only "
            "nodes whose certification carries their NATS key (nats.pub); have the certifier "
            "certify it (anjian keys certify ... --nats-key nats.pub) and the tier regenerate "
            "its server's authorisation (anjian nats config)",
            error=text,
        )
    return _("refused by the NATS server: {error}", error=text)


def _tls_failure(error: BaseException, configured: bool = True) -> Text:
    text = _describe(error)
    if not configured:
        why = _(
            "the server requires TLS: set [federation] tls_ca to the CA that signed its "
            "certificate (and use tls:// URLs)"
        )
    elif "CERTIFICATE_VERIFY_FAILED" in text:
        why = _(
            "the server's certificate is not signed by [federation] tls_ca, or does not name "
            "the address connected to"
        )
    elif any(a in text.upper() for a in ("CERTIFICATE", "UNKNOWN_CA")):
        # an alert from the server: a certificate bad, missing, or of a CA it does not know
        why = _(
            "the server requires a client certificate signed by its CA: set [federation] "
            "tls_cert and tls_key"
        )
    else:
        why = _("check [federation] tls_ca, tls_cert and tls_key against the server's TLS")
    return _("TLS with the NATS server failed ({error}): {why}", error=text, why=why)


class Refusals:
    """What the server refused on one connection (its error callback sees them, the calls
    waiting on the connection are told): the first refusal ends every call since."""

    def __init__(self, tls: bool = True) -> None:
        self.tls = tls  # whether this client was given TLS files (for what to say)
        self.first: Text | None = None
        self.event = asyncio.Event()

    def note(self, error: BaseException) -> None:
        text = _describe(error)
        if isinstance(error, ssl.SSLError):
            said = _tls_failure(error, self.tls)
        elif _is_refusal(text):
            said = _refusal(text)
        else:
            return
        self.refuse(said)

    def refuse(self, said: Text) -> None:
        log.debug("NATS: %s", said)  # the caller is told (Refused) and says it
        if self.first is None:
            self.first = said
        self.event.set()

    def check(self) -> None:
        if self.first is not None:
            raise Refused(self.first)

    async def guard(self, call: Awaitable[T]) -> T:
        """The result of ``call``, or Refused as soon as the server refuses something on this
        connection (a permission violation answers nothing: the call would wait its timeout).
        A refusal that came with the result (a subscription refused, then the flush's answer)
        wins."""
        self.check()
        task = asyncio.ensure_future(call)
        refused = asyncio.ensure_future(self.event.wait())
        try:
            await asyncio.wait({task, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # refused, or this caller cancelled: the call goes with it
            refused.cancel()
            # whatever the call ends with is taken: one that failed as its caller went (or
            # while being cancelled) says nothing of it in the log
            task.add_done_callback(_taken)
            if not task.done():
                task.cancel()
        if task.cancelled():
            with contextlib.suppress(BaseException):
                await task
        self.check()
        with mapped():
            return task.result()


def _taken(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class NATSTransport(Transport):
    async def connect(
        self, url: str, name: str, credentials: Credentials | None = None
    ) -> NATSConnection:
        credentials = credentials or Credentials()
        refusals = Refusals(tls=credentials.tls is not None)
        with mapped():
            nc = await connect(url, name, credentials, refusals)
        return NATSConnection(nc, name, refusals)


class NATSConnection(Connection):
    def __init__(self, nc: Client, name: str, refusals: Refusals | None = None) -> None:
        self.nc, self.name = nc, name
        self.js: JetStreamContext = nc.jetstream()
        self.refusals = refusals or Refusals()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        msg = await self.refusals.guard(self.nc.request(subject, data, timeout=timeout))
        return msg.data

    async def serve(self, subject: str, handler: Handler) -> Served:
        async def answer(msg: Msg) -> None:
            if not (msg.reply or "").startswith(inbox(msg.subject.rsplit(".", 1)[-1]) + "."):
                log.warning(
                    _(
                        "{name}: not answering {subject}: its reply subject {reply!r} is not"
                        " the asker's inbox",
                        name=self.name,
                        subject=msg.subject,
                        reply=(msg.reply or "")[:100],
                    )
                )
                return
            try:
                reply = await handler(msg.subject, msg.data)
                with mapped():
                    await msg.respond(reply)
            except TransportError as e:
                log.info(
                    _(
                        "{name}: could not answer {subject}: {error}",
                        name=self.name,
                        subject=msg.subject,
                        error=e,
                    )
                )
            except Exception:
                log.exception(
                    _("{name}: could not answer {subject}", name=self.name, subject=msg.subject)
                )

        sub = await self.refusals.guard(self._subscribe(subject, answer))
        return _Served(sub)

    async def _subscribe(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Subscription:
        sub = await self.nc.subscribe(subject, cb=cb)
        # a subscription the server refuses is refused now, not later: nats-py sends its PING
        # ahead of what waits to be written, so the second round trip is the one after the SUB
        await self.nc.flush(2)
        await self.nc.flush(2)
        return sub

    async def ensure_stream(self, name: str) -> None:
        await self.refusals.guard(ensure_stream(self.js, name))

    async def publish(self, messages: Sequence[Message], timeout: float = 10.0) -> int:
        self.refusals.check()
        with mapped():
            done = await publish(self.js, messages, timeout, self.refusals.event)
        if done < len(messages):
            self.refusals.check()
        return done

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        after = spec.after
        config = ConsumerConfig(
            ack_policy=AckPolicy.ALL if spec.ack_all else AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_wait=spec.ack_wait,
            max_deliver=-1,
            max_ack_pending=spec.max_ack_pending,
            inactive_threshold=spec.inactive,
        )
        sub = await self.refusals.guard(pull_consumer(self.js, spec, config))
        return _Consumer(sub, self.refusals)

    async def delete_consumer(self, stream: str, durable: str) -> None:
        await self.refusals.guard(_delete_consumer(self.js, stream, durable))

    async def stream_info(self, name: str) -> StreamState | None:
        return await self.refusals.guard(_stream_state(self.js, name))

    async def last_id(self, stream: str, subject: str) -> str | None:
        return await self.refusals.guard(last_id(self.js, stream, subject))

    async def close(self) -> None:
        with mapped():
            await self.nc.close()


async def _delete_consumer(js: JetStreamContext, stream: str, durable: str) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(stream, durable)


async def _stream_state(js: JetStreamContext, name: str) -> StreamState | None:
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        return None
    return StreamState(
        messages=info.state.messages, last_seq=info.state.last_seq, created=f"{info.created}"
    )


async def last_id(js: JetStreamContext, stream: str, subject: str) -> str | None:
    """The message id of the last message on ``subject``: asked with a direct get naming the
    subject (what a server's permissions can confine to a client's own subjects), or the
    stream API where the stream does not allow direct gets yet."""
    try:
        msg = await js.get_last_msg(stream, subject, direct=True)
    except NotFoundError:
        return None
    except (NoRespondersError, ServiceUnavailableError):
        try:
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
    return (msg.headers or {}).get("Nats-Msg-Id") or None


class _Served(Served):
    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def stop(self) -> None:
        with mapped():
            await self.sub.unsubscribe()


class _Consumer(Consumer):
    def __init__(self, sub: JetStreamContext.PullSubscription, refusals: Refusals) -> None:
        self.sub, self.refusals = sub, refusals

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        msgs = await self.refusals.guard(self._fetch(batch, timeout))
        return [
            Delivery(
                m.subject,
                m.data,
                pending=m.metadata.num_pending,
                seq=m.metadata.sequence.stream,
                acker=_acker(m, self.refusals),
                extender=_extender(m, self.refusals),
            )
            for m in msgs
        ]

    async def _fetch(self, batch: int, timeout: float) -> list[Msg]:
        try:
            return await self.sub.fetch(batch, timeout=timeout)
        except TimeoutError:
            return []


def _acker(msg: Msg, refusals: Refusals) -> Callable[[], Awaitable[None]]:
    async def ack() -> None:
        refusals.check()
        with mapped():
            await msg.ack()

    return ack


def _extender(msg: Msg, refusals: Refusals) -> Callable[[], Awaitable[None]]:
    async def extend() -> None:  # JetStream's "+WPI": the ack wait starts again
        refusals.check()
        with mapped():
            await msg.in_progress()

    return extend


# -- nats-py ---------------------------------------------------------------------------------
CONNECT_WITHIN = 4.0  # seconds the first connection may take before the caller is told


async def connect(
    url: str, name: str, credentials: Credentials | None = None, refusals: Refusals | None = None
) -> Client:
    """One connection that reconnects by itself once made; the first attempt fails fast so
    the caller can log that it works offline and try again later, and at once if the server
    refuses the credentials (Refused)."""
    credentials = credentials or Credentials()
    refusals = refusals or Refusals()
    last: list[str] = []

    async def error(e: Exception) -> None:  # reconnect attempts: a line, not a traceback
        log.debug("%s: %s", name, e or type(e).__name__)
        last[:] = [_describe(e)]
        refusals.note(e)

    async def disconnected() -> None:
        log.warning(
            _(
                "{name}: disconnected from {url}; reconnecting in the background",
                name=name,
                url=url,
            )
        )

    async def reconnected() -> None:
        log.info(_("{name}: reconnected to {url}", name=name, url=url))
        if not _encrypted(nc, credentials):
            refusals.refuse(_plain(url))
            await nc.close()

    nc = Client()
    options = _options(credentials)
    attempt = asyncio.ensure_future(
        nc.connect(
            url,
            name=name,
            error_cb=error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            # a line back, or a server restarted: on again at once
            reconnect_time_wait=0.25,  # type: ignore[arg-type]
            ping_interval=5,
            max_outstanding_pings=2,
            **options,
        )
    )
    refused = asyncio.ensure_future(refusals.event.wait())
    try:  # nats-py retries the first connection forever too: give up on it after a while
        done, _pending = await asyncio.wait(
            {attempt, refused}, timeout=CONNECT_WITHIN, return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:  # the caller gave up (cancelled): so does the attempt
        attempt.cancel()
        raise
    finally:
        refused.cancel()
    if attempt in done:
        attempt.result()
        if not _encrypted(nc, credentials):  # TLS was asked for: never plain text instead
            await nc.close()
            raise Refused(_plain(url))
        return nc
    attempt.cancel()
    with contextlib.suppress(BaseException):
        await attempt
    with contextlib.suppress(BaseException):
        await nc.close()
    _release(nc)
    refusals.check()
    if last:
        raise OSError(_("no NATS server answered at {url} ({error})", url=url, error=last[0]))
    raise OSError(_("no NATS server answered at {url}", url=url))


def _release(nc: Client) -> None:
    """Close the plain socket of a connection whose TLS upgrade failed: nats-py closes only
    the upgraded stream, and the bare one would be left to the garbage collector."""
    transport = getattr(nc, "_transport", None)
    bare = getattr(transport, "_bare_io_writer", None)
    if isinstance(bare, asyncio.StreamWriter) and not bare.is_closing():
        bare.close()


def _plain(url: str) -> Text:
    return _(
        "the NATS server at {url} does not require TLS, but [federation] tls_ca is set: "
        "not talking to it in plain text (is it the right server, with its TLS configured?)",
        url=url,
    )


def _encrypted(nc: Client, credentials: Credentials) -> bool:
    """Whether the connection is as TLS as asked (nats-py upgrades to TLS only when the
    server requires it, whatever the client was given)."""
    return credentials.tls is None or bool(nc._server_info.get("tls_required"))


def _options(credentials: Credentials) -> dict[str, Any]:
    """nats-py's connect options for the credentials: nkey, inbox prefix, TLS."""
    options: dict[str, Any] = {}
    if credentials.seed:
        options["nkeys_seed_str"] = credentials.seed.decode()
    if credentials.inbox:
        options["inbox_prefix"] = credentials.inbox
    if credentials.tls is not None:
        options["tls"] = ssl_context(credentials.tls.ca, credentials.tls.cert, credentials.tls.key)
    return options


def ssl_context(ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A client's TLS context: the server verified against ``ca`` (its name or address too),
    and this client's certificate for a server that asks for one."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise TransportError(
            _("the TLS files of [federation] cannot be used: {error}", error=str(e))
        ) from None
    return context


async def pull_consumer(
    js: JetStreamContext, spec: ConsumerSpec, config: ConsumerConfig
) -> JetStreamContext.PullSubscription:
    """Bind the durable ``spec`` names, made first if missing, or made again if its filter is
    not ``spec.subject``. It is made by name with its filter in the API subject
    (``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``, nats-server 2.9), which a server's
    permissions can pin to one filter per client."""
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        info = None
    if info is not None and info.config.filter_subject != spec.subject:
        log.info(
            _(
                "consumer {durable} had filter {subject}: made again",
                durable=spec.durable,
                subject=info.config.filter_subject,
            )
        )
        await js.delete_consumer(spec.stream, spec.durable)
        info = None
    if info is None:
        named = replace(
            config, name=spec.durable, durable_name=spec.durable, filter_subject=spec.subject
        )
        await js.add_consumer(spec.stream, config=named)
    return await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)


async def ensure_stream(js: JetStreamContext, name: str) -> None:
    """Create the stream if it is missing (a restart keeps the existing one and its data), or
    bring an existing one's retention to this version's."""
    # what goes up is applied by the parent and kept there: the stream only bridges outages;
    # the archive is the restorable copy, and what comes down every future child must learn
    max_age = RETENTION if name == UP else 0.0
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = None
    if info is not None:
        if (info.config.max_age or 0.0) != max_age or not info.config.allow_direct:
            await js.update_stream(replace(info.config, max_age=max_age, allow_direct=True))
        return
    await js.add_stream(
        StreamConfig(
            name=name,
            subjects=[SUBJECTS[name]],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
            max_age=max_age,
            deny_delete=True,
            deny_purge=True,
            # the last message of a subject by a get naming it: what permissions can confine
            allow_direct=True,
        )
    )


async def publish(
    js: JetStreamContext,
    messages: Sequence[Message],
    timeout: float = 10.0,
    refused: asyncio.Event | None = None,
) -> int:
    """Connection.publish over nats-py's publish_async; stops waiting for acknowledgements
    once ``refused`` is set (the server refused something: the rest would never come)."""
    futures: list[asyncio.Future[Any]] = []
    try:
        for m in messages:
            futures.append(
                await js.publish_async(m.subject, m.data, headers={"Nats-Msg-Id": m.msg_id})
            )
    except NATS_ERRORS as e:
        log.info(
            _("publish stopped after {count} sent: {error}", count=len(futures), error=repr(e))
        )
    if futures:
        acked = asyncio.ensure_future(asyncio.wait(futures, timeout=timeout))
        stop = asyncio.ensure_future((refused or asyncio.Event()).wait())
        try:
            await asyncio.wait({acked, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            acked.cancel()
    done = 0
    for future in futures:
        if not future.done() or future.cancelled() or future.exception() is not None:
            break
        done += 1
    for future in futures[done:]:
        future.cancel()
    return done
