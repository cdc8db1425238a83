"""SIPp scenarios built per test: calls that key digits (SIP INFO DTMF), expect a redirect or a refusal,
or ring without answering.  Written to the test's work folder; `Sipp` takes the absolute path.

DTMF is sent as SIP INFO (application/dtmf-relay, handled by res_pjsip_dtmf_info): one request per digit,
each acknowledged by Asterisk before the next, so the digits arrive in order, 200 ms apart like a person
keying them (each lasts 160 ms; Asterisk emulates the key press for that long and defers a digit that
arrives during it).  A pause before the first digit is the caller listening to the prompt.
"""

from __future__ import annotations

from pathlib import Path

_SDP = """Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16"""

_FROM = "From: <sip:[user]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"


def _invite(cseq: int, auth: bool) -> str:
    # no blank line may appear among the headers: it would end them (the SDP then has no Content-Type)
    authentication = "\n      [authentication]" if auth else ""
    return f"""  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {_FROM}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:[user]@[local_ip]:[local_port]>{authentication}
      Max-Forwards: 70
      {_SDP}
    ]]>
  </send>
"""


def _ack(cseq: int, *, same_branch: bool = False) -> str:
    # a non-2xx final response is acknowledged in its own transaction (same branch, RFC 3261 17.1.1.3)
    via = "[last_Via:]" if same_branch else "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]"
    return f"""  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      {via}
      {_FROM}
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Contact: <sip:[user]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def _info(cseq: int, digit: str) -> str:
    body = f"Signal={digit}\n      Duration=160\n"
    return f"""  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {_FROM}
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:[user]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      {body}
    ]]>
  </send>
  <recv response="200"/>
"""


_WAIT_BYE = """  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.xml"
    path.write_text(f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n{body}</scenario>\n')
    return path


def keyed_call(
    folder: Path, digits: str, *, phone: bool, first_pause_ms: int = 700, gap_ms: int = 500, name: str = "keyed"
) -> Path:
    """A call to [service] that is answered, keys `digits` (groups split by ' ', `gap_ms` between groups: the
    caller listening to the next prompt), and waits for the far end to hang up.  `phone`: an authenticated
    phone (-au/-ap, -key user), else the carrier (no authentication)."""
    cseq = 1
    body = _invite(cseq, auth=False)
    if phone:
        body += '  <recv response="100" optional="true"/>\n  <recv response="401" auth="true"/>\n'
        body += _ack(cseq, same_branch=True)
        cseq += 1
        body += _invite(cseq, auth=True)
    body += '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
    body += '  <recv response="183" optional="true"/>\n  <recv response="200" rtd="true"/>\n'
    body += _ack(cseq)
    if digits:
        body += f'  <pause milliseconds="{first_pause_ms}"/>\n'
    for i, group in enumerate(digits.split(" ") if digits else ()):
        for j, d in enumerate(group):
            # nothing after the last digit: the far end may hang up at once, and a SIPp pause cannot take a BYE
            if i or j:
                body += f'  <pause milliseconds="{gap_ms if j == 0 else 200}"/>\n'
            cseq += 1
            body += _info(cseq, d)
    body += _WAIT_BYE
    return _write(folder, name, body)


def refused_call(folder: Path, *, phone: bool, code: int, name: str = "refused") -> Path:
    """A call that must end with final response `code` (maybe after early media); checks nothing else."""
    body = _invite(1, auth=False)
    cseq = 1
    if phone:
        body += '  <recv response="100" optional="true"/>\n  <recv response="401" auth="true"/>\n'
        body += _ack(1, same_branch=True)
        cseq = 2
        body += _invite(2, auth=True)
    body += '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
    body += '  <recv response="183" optional="true"/>\n'
    body += f'  <recv response="{code}"/>\n'
    body += _ack(cseq, same_branch=True)
    return _write(folder, name, body)


def redirected_call(folder: Path, contact_regexp: str, name: str = "redirected") -> Path:
    """A carrier call that must be answered by `302 Moved Temporarily` whose Contact matches the regexp."""
    body = _invite(1, auth=False)
    body += '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
    body += f"""  <recv response="302">
    <action>
      <ereg regexp="{contact_regexp}" search_in="hdr" header="Contact:" check_it="true" assign_to="contact"/>
    </action>
  </recv>
"""
    body += _ack(1, same_branch=True)
    body += '  <Reference variables="contact"/>\n'  # SIPp refuses a variable assigned but never used
    return _write(folder, name, body)


#: A phone that receives an INVITE and rings (180).
_RINGING = """  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
"""


def ring_no_answer(folder: Path, name: str = "rna") -> Path:
    """A phone that rings without answering: 180, then the caller's CANCEL ends the ring.  Each INVITE is
    a new SIPp call: run it with `calls=N` for N rings."""
    body = (
        _RINGING
        + """  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [last_cseq_number] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
"""
    )
    return _write(folder, name, body)


# ---------------------------------------------------------------------------------------------- call control
# Parties whose call is transferred, held, spied on or originated get in-dialog re-INVITEs or UPDATEs from
# Asterisk (connected-line updates, media changes).  These scenarios answer them and keep waiting for BYE.

_SDP_ANSWER = """Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=party 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16"""


def _in_dialog_until_bye() -> str:
    """Answer re-INVITEs (200 with SDP, then their ACK) and UPDATEs (200) until a BYE comes; answer it."""
    return f"""  <label id="1"/>
  <recv request="INVITE" optional="true" next="2"/>
  <recv request="UPDATE" optional="true" next="4"/>
  <recv request="BYE" next="3"/>
  <label id="2"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      {_SDP_ANSWER}
    ]]>
  </send>
  <recv request="ACK" next="1"/>
  <label id="4"/>
  <send next="1">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <label id="3"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def answering_party(folder: Path, name: str = "party") -> Path:
    """A phone (UAS) that answers one call after 300 ms of ringing, takes in-dialog updates, waits for BYE."""
    body = (
        _RINGING
        + f"""  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      {_SDP_ANSWER}
    ]]>
  </send>
  <recv request="ACK" rtd="true" crlf="true"/>
"""
    )
    return _write(folder, name, body + _in_dialog_until_bye())


def waiting_caller(folder: Path, name: str = "waiting-caller") -> Path:
    """A carrier call to [service] (-key caller) that is answered, takes in-dialog updates, waits for BYE."""
    body = _invite(1, auth=False).replace("[user]", "[caller]")
    body += '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
    body += '  <recv response="183" optional="true"/>\n  <recv response="200" rtd="true"/>\n'
    body += _ack(1).replace("[user]", "[caller]")
    return _write(folder, name, body + _in_dialog_until_bye())


def cancelling_caller(folder: Path, wait_ms: int, name: str = "cancelling-caller") -> Path:
    """A carrier call to [service] (-key caller) that waits unanswered for `wait_ms`, then hangs up (CANCEL):
    a caller who gives up in the queue."""
    body = _invite(1, auth=False).replace("[user]", "[caller]")
    body += '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
    body += '  <recv response="183"/>\n'  # Queue() runs Progress(): early media, the caller waits
    body += f'  <pause milliseconds="{wait_ms}"/>\n'
    # CANCEL: same branch and CSeq number as the INVITE (the last response's Via is our INVITE's)
    body += """  <send>
    <![CDATA[
      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
"""
    body += _ack(1, same_branch=True).replace("[user]", "[caller]")
    return _write(folder, name, body)
