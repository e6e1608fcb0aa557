"""A client's offer → producers and consumers of its peer → our answer.

The client is always the offerer. Its sending sections become producers (their source,
camera or screen, named by the server); its receiving sections become consumers of the
producers the server named for them. Sections that disappeared end what they carried.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from protocol.sfu_control import Answer, ControlError, PeerOffer, ProducerInfo
from sfu import sdp
from sfu.consumer import Consumer
from sfu.producer import Producer, RtpParams

if TYPE_CHECKING:
    from sfu.peer import Peer
    from sfu.router import Router

_SENDING = ("sendonly", "sendrecv")


def _params(media: sdp.NegotiatedMedia, codec: sdp.NegotiatedCodec) -> RtpParams:
    ext = media.extensions
    feedback = codec.codec.rtcp_fb
    return RtpParams(
        mid=media.mid,
        kind=media.kind,
        codec=codec.codec.name.lower(),
        payload_type=codec.codec.pt,
        clock_rate=codec.codec.clock_rate,
        rtx_payload_type=codec.rtx_pt or 0,
        ext_mid=ext.get(sdp.EXT_MID, 0),
        ext_rid=ext.get(sdp.EXT_RID, 0),
        ext_repaired_rid=ext.get(sdp.EXT_REPAIRED_RID, 0),
        ext_abs_send_time=ext.get(sdp.EXT_ABS_SEND_TIME, 0),
        ext_transport_cc=ext.get(sdp.EXT_TRANSPORT_CC, 0),
        ext_audio_level=ext.get(sdp.EXT_AUDIO_LEVEL, 0),
        nack="nack" in feedback,
        pli="nack pli" in feedback,
        remb="goog-remb" in feedback,
        transport_cc="transport-cc" in feedback,
    )


def _new_ssrc(peer: Peer) -> int:
    while True:
        ssrc = int.from_bytes(os.urandom(4), "big")
        if ssrc and ssrc not in peer.consumer_by_ssrc:
            return ssrc


def negotiate(router: Router, peer: Peer, request: PeerOffer) -> Answer:
    try:
        offer = sdp.parse_sdp(request.sdp)
        result = sdp.negotiate(offer)
    except sdp.SdpError as exc:
        raise ControlError("bad_sdp", str(exc)) from None
    if result.transport is None:
        raise ControlError("bad_sdp", "the offer must bundle its media (a=group:BUNDLE)")
    transport = result.transport
    peer.set_remote_fingerprints([(f.algorithm, f.value) for f in transport.fingerprints])
    if peer.ice.remote_ufrag not in (None, transport.ice_ufrag):
        router.restart_ice(peer)  # the client restarted ICE: new credentials on both sides
    peer.ice.set_remote_ufrag(transport.ice_ufrag)
    plans: dict[str, sdp.MediaPlan] = {}
    created: list[ProducerInfo] = []
    sending: set[str] = set()
    receiving: dict[str, str] = {}
    for media in result.media:
        if media.reject_reason is not None:
            plans[media.mid] = sdp.MediaPlan(accept=False)
            continue
        if media.direction in _SENDING:
            sending.add(media.mid)
            producer = _producer(router, peer, request, media)
            if producer is not None:
                created.append(producer)
            plans[media.mid] = sdp.MediaPlan(accept=True)
        elif media.direction == "recvonly":
            plans[media.mid] = _consumer(peer, request.subscriptions.get(media.mid), media)
            consumer = peer.consumer_mids.get(media.mid)
            if consumer is not None:
                receiving[media.mid] = consumer.producer.producer_id
        else:
            plans[media.mid] = sdp.MediaPlan(accept=True)
        _note_extensions(peer, media)
    closed = _forget(router, peer, sending, receiving)
    peer.answers += 1
    algorithm, value = router.certificate.fingerprint
    answer = sdp.build_answer(
        offer,
        sdp.AnswerPlan(
            session_id=peer.session_id,
            session_version=peer.answers,
            ice_ufrag=peer.ice.local_ufrag,
            ice_pwd=peer.ice.local_pwd,
            fingerprint=sdp.Fingerprint(algorithm, value),
            address=router.announce,
            port=router.port,
            media=plans,
        ),
    )
    return Answer(sdp=answer, producers=created, closed_producers=closed)


def _note_extensions(peer: Peer, media: sdp.NegotiatedMedia) -> None:
    # Chrome uses one id per extension across the bundle; the last section wins if not.
    ext = media.extensions
    peer.mid_ext = ext.get(sdp.EXT_MID, peer.mid_ext)
    if media.kind == "video":
        peer.rid_ext = ext.get(sdp.EXT_RID, peer.rid_ext)
        peer.repaired_rid_ext = ext.get(sdp.EXT_REPAIRED_RID, peer.repaired_rid_ext)
    peer.transport_cc_ext = ext.get(sdp.EXT_TRANSPORT_CC, peer.transport_cc_ext)


def _producer(
    router: Router, peer: Peer, request: PeerOffer, media: sdp.NegotiatedMedia
) -> ProducerInfo | None:
    """The producer for a sending section; a ProducerInfo only when it is new."""
    if media.mid in peer.producer_mids:
        return None
    source = request.sources.get(media.mid, "mic" if media.kind == "audio" else "camera")
    producer = Producer(
        router.new_id("p"),
        peer,
        source,
        _params(media, media.codecs[0]),
        [rid.rid for rid in media.rids],
        [encoding.ssrc for encoding in media.ssrcs],
    )
    peer.producers[producer.producer_id] = producer
    peer.producer_mids[media.mid] = producer
    for encoding in producer.encodings:
        if encoding.ssrc is not None:
            peer.by_ssrc[encoding.ssrc] = encoding
        peer.by_mid_rid[(media.mid, encoding.rid)] = encoding
    if not media.rids and media.ssrcs and media.ssrcs[0].rtx_ssrc is not None:
        peer.rtx_by_ssrc[media.ssrcs[0].rtx_ssrc] = producer.encodings[0]
    router.producers[producer.producer_id] = producer
    return ProducerInfo(
        producer_id=producer.producer_id,
        peer_id=peer.peer_id,
        kind=producer.kind,  # type: ignore[arg-type]
        source=source,
        mid=media.mid,
        simulcast=producer.simulcast,
    )


def _consumer(peer: Peer, producer_id: str | None, media: sdp.NegotiatedMedia) -> sdp.MediaPlan:
    """A receiving section: the consumer of the producer the client asked for there."""
    existing = peer.consumer_mids.get(media.mid)
    if existing is not None and existing.producer.producer_id == producer_id:
        return _sender_plan(existing)
    producer = None if producer_id is None else peer.router.producers.get(producer_id)
    if producer is None or producer.kind != media.kind or producer.peer is peer:
        if existing is not None:
            # The client stopped naming the track it got there (it left the peer's room):
            # the section goes inactive, so what it carried ends.
            _drop_consumer(peer, existing)
        return sdp.MediaPlan(accept=True)  # nothing to send there (yet): inactive
    codec = next(
        (c for c in media.codecs if c.codec.name.lower() == producer.codec),
        None,
    )
    if codec is None:
        raise ControlError("unsupported_codec", f"mid {media.mid} cannot receive {producer.codec}")
    if existing is not None:
        _drop_consumer(peer, existing)
    consumer = peer.consumers.get(producer.producer_id)
    if consumer is not None:
        # The same track moved to another section: end the old one.
        _drop_consumer(peer, consumer)
    consumer = Consumer(peer, producer, _params(media, codec), _new_ssrc(peer))
    peer.consumers[producer.producer_id] = consumer
    peer.consumer_by_ssrc[consumer.ssrc] = consumer
    peer.consumer_mids[media.mid] = consumer
    return _sender_plan(consumer)


def _sender_plan(consumer: Consumer) -> sdp.MediaPlan:
    publisher = consumer.producer.peer
    return sdp.MediaPlan(
        accept=True,
        sender=sdp.SenderPlan(
            ssrc=consumer.ssrc,
            rtx_ssrc=None,
            cname=publisher.cname,
            stream_id=publisher.peer_id,
            track_id=consumer.producer.producer_id,
        ),
    )


def _drop_consumer(peer: Peer, consumer: Consumer) -> None:
    consumer.close()
    peer.consumers.pop(consumer.producer.producer_id, None)
    peer.consumer_by_ssrc.pop(consumer.ssrc, None)
    for mid, owner in list(peer.consumer_mids.items()):
        if owner is consumer:
            del peer.consumer_mids[mid]


def _forget(router: Router, peer: Peer, sending: set[str], receiving: dict[str, str]) -> list[str]:
    """End what the new offer no longer carries; returns the closed producers' ids."""
    closed = []
    for mid, producer in list(peer.producer_mids.items()):
        if mid in sending:
            continue
        del peer.producer_mids[mid]
        router.close_producer(producer)
        closed.append(producer.producer_id)
    for mid, consumer in list(peer.consumer_mids.items()):
        if receiving.get(mid) != consumer.producer.producer_id:
            _drop_consumer(peer, consumer)
    return closed
