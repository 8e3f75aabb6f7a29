"""What federation/ says to a person reads in zh-CN (the default) and in English, while what a
program keeps of it stays as it was: a VerificationError's ``reason`` is the stable code a
quarantine and an auditor's report group by, never translated."""

import pickle

import pytest

from domain.i18n import EN, ZH, _, speaking
from federation.canonical import encode
from federation.errors import NonCanonical, VerificationError
from federation.jetstream import mapped
from federation.keys import ROOT, build_trust, certify, parse_document
from federation.proof import check_proof
from federation.suite import SigningKey
from federation.transport import Refused, TransportError
from federation.verify import Trust

ROOT_KEY, COUNTY = SigningKey.generate(), SigningKey.generate()


def test_a_verification_error_keeps_its_reason_and_reads_in_either_language():
    with pytest.raises(VerificationError) as caught:
        Trust().key_for("130102", "0123456789abcdef", 7)
    e = caught.value
    assert e.reason == "unknown_key"
    assert e.message(EN) == "unknown_key: key 0123456789abcdef is not certified for origin 130102"
    assert e.message(ZH) == "unknown_key：密钥 0123456789abcdef 未被认证为来源节点 130102 的密钥"
    assert str(e) == e.message(EN)  # the suite reads English
    with speaking(ZH):
        assert str(e) == e.message(ZH)
    # what a quarantine keeps: the code, and the message as read when it was kept
    again = pickle.loads(pickle.dumps(e))
    assert (type(again), again.reason, again.message(ZH)) == (type(e), e.reason, e.message(ZH))


def test_non_canonical_bytes_say_why_in_either_language():
    from federation.canonical import decode

    with pytest.raises(NonCanonical) as caught:
        decode(encode({"a": 1}) + b"\x00")
    e = caught.value
    assert e.reason == "non_canonical"
    assert e.message(EN).startswith("non_canonical: not a single msgpack value: ")
    assert e.message(ZH).startswith("non_canonical：不是单个 msgpack 值：")
    assert pickle.loads(pickle.dumps(e)).message(ZH) == e.message(ZH)


def test_a_transport_refusal_reads_in_either_language():
    with pytest.raises(Refused) as caught, mapped():
        raise OSError("nats: 'Authorization Violation'")  # what nats-py says, in its words
    e = caught.value
    assert e.message(EN).startswith(
        "the NATS server refused this node's credentials (Authorization Violation): "
    )
    assert "anjian keys certify ... --nats-key nats.pub" in e.message(EN)
    zh = e.message(ZH)
    assert zh.startswith("NATS 服务器拒绝了本节点的凭据（Authorization Violation）：")
    assert "anjian keys certify ... --nats-key nats.pub" in zh and "anjian nats config" in zh


def test_our_own_words_pass_the_adapters_boundary_untranslated_until_read():
    said = _("no NATS server answered at {url}", url="nats://city:4222")
    with pytest.raises(TransportError) as caught, mapped():
        raise OSError(said)
    assert caught.value.message(EN) == "no NATS server answered at nats://city:4222"
    assert caught.value.message(ZH) == "nats://city:4222 处没有 NATS 服务器应答"


def test_a_key_document_refused_reads_in_either_language():
    county = certify(
        ROOT_KEY, ROOT, origin="130102", region="130102", tier="county", public=COUNTY.public
    )
    _trust, problems = build_trust(ROOT_KEY.public, [county])
    [e] = problems
    assert e.reason == "out_of_subtree"
    assert e.message(EN) == (
        "out_of_subtree: the root certifies national, backup and provincial keys, "
        "not the county 130102"
    )
    assert e.message(ZH) == (
        "out_of_subtree：根密钥只认证国家级、备份中心和省级节点的密钥，不认证县级节点 130102"
    )


def test_a_malformed_key_document_reads_in_either_language():
    with pytest.raises(VerificationError) as caught:
        parse_document(encode({"body": b"x"}))
    assert caught.value.reason == "malformed_document"
    assert caught.value.message(EN) == "malformed_document: a key document is {body, sig}"
    assert caught.value.message(ZH) == "malformed_document：密钥文件应为 {body, sig}"


def test_what_a_proof_lacks_is_listed_in_the_readers_language():
    with pytest.raises(VerificationError) as caught:
        check_proof({"proof": "consistency", "origin": "130102", "extra": 1}, ROOT_KEY.public)
    e = caught.value
    assert e.reason == "malformed_proof"
    assert e.message(EN) == (
        "malformed_proof: the consistency proof has no 'documents', no 'new', no 'old', "
        "no 'path', an unexpected 'extra'"
    )
    assert e.message(ZH) == (
        "malformed_proof：consistency 证明的字段有误："
        "缺少 'documents'、缺少 'new'、缺少 'old'、缺少 'path'、多出 'extra'"
    )
