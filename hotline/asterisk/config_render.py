"""Render one Asterisk node's private configuration from Hotline's settings.

Pure: returns {file name: text}; `lab.write_node_config` writes them.  What is static here is only what
must work when Hotline is unreachable (transports, the carrier trunk, the dialplan skeleton and the
fallback) or what Asterisk cannot take from realtime.  Phones, queues and members come live from Hotline's
realtime backend (res_config_curl), so changing them needs no reload.

Facts this relies on (see ../shared/design/asterisk-reference.md):
- res_curl.conf timeouts are in SECONDS and HTTP errors are ignored unless `failurecodes` is set (trap 1, 2).
- A copied asterisk.conf `[directories](!)` would be a template; we write `[directories]` (trap 18).
- `systemname` makes uniqueids unique across nodes (trap 16).
- AMI drops readers slower than writetimeout (trap 10): we set 5000 ms and read continuously anyway.
- AGI has no read timeout (trap 12): the dialplan arms TIMEOUT(absolute) around AGI() with
  AGIEXITONHANGUP=yes, so a hung Hotline sends the call to the `T` extension and on to the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.settings import Settings

MODULES = (
    # realtime over HTTP + sorcery wizards
    "res_curl.so",
    "func_curl.so",
    "res_config_curl.so",
    "res_sorcery_config.so",
    "res_sorcery_memory.so",
    "res_sorcery_astdb.so",
    "res_sorcery_realtime.so",
    "res_sorcery_memory_cache.so",
    "res_realtime.so",
    # PJSIP
    "res_pjproject.so",
    "res_pjsip.so",
    "res_pjsip_session.so",
    "res_pjsip_pubsub.so",
    "chan_pjsip.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_outbound_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_registrar.so",
    "res_pjsip_sdp_rtp.so",
    "res_pjsip_caller_id.so",
    "res_pjsip_header_funcs.so",
    "res_pjsip_refer.so",
    "res_pjsip_rfc3326.so",
    "res_pjsip_dtmf_info.so",
    "res_pjsip_nat.so",
    "res_pjsip_acl.so",
    "res_pjsip_logger.so",
    "res_rtp_asterisk.so",
    "res_timing_timerfd.so",
    # bridging, codecs, formats
    "bridge_simple.so",
    "bridge_native_rtp.so",
    "bridge_softmix.so",
    "bridge_holding.so",
    "bridge_builtin_features.so",
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_gsm.so",
    "format_wav.so",
    "format_pcm.so",
    "format_sln.so",
    "format_gsm.so",
    # dialplan and applications
    "pbx_config.so",
    "app_dial.so",
    "app_queue.so",
    "app_stack.so",
    "app_playback.so",
    "app_echo.so",
    "app_verbose.so",
    "app_exec.so",
    "app_transfer.so",
    "app_mixmonitor.so",
    "app_userevent.so",
    "res_musiconhold.so",
    "res_speech.so",
    "res_agi.so",
    "func_channel.so",
    "func_callerid.so",
    "func_strings.so",
    "func_logic.so",
    "func_global.so",
    "func_uri.so",
    "func_realtime.so",
    "func_timeout.so",
    "app_senddtmf.so",
    "app_read.so",
    "app_chanspy.so",
    # reporting
    "res_security_log.so",
)

# The node-side caches of realtime objects, by their sorcery names (section/type), and their safety lifetime.
SORCERY_CACHES = ("res_pjsip/endpoint", "res_pjsip/auth", "res_pjsip/aor")
CACHE_LIFETIME_S = 600

#: AMI events the node never generates (manager.conf `disabledevents`, global: Hotline is the node's only AMI
#: user). Asterisk checks this list before it formats an event (main/manager.c), so a disabled event costs
#: the node nothing, unlike a per-user `eventfilter`, which is applied after formatting. Hotline's listeners
#: (journal, agents, recordings, screen pop) and the call tracker read Newchannel, DialBegin/DialEnd,
#: BridgeEnter/BridgeLeave, HangupRequest/SoftHangupRequest, Hangup, the queue caller and agent events,
#: MusicOnHold*, MixMonitor*, UserEvent and the transfer events: all of those stay. A queue call sends
#: ~16 events instead of ~28 (bench/CALLS.md).
DISABLED_EVENTS = (
    # channel variables and dialplan steps: far too many, never read
    "Newexten",
    "VarSet",
    # Debian's build emits one per digest authentication (test framework)
    "TestEvent",
    # snapshot updates: the facts they carry come with DialEnd, AgentConnect, BridgeEnter and Hangup
    "Newstate",
    "NewConnectedLine",
    "NewCallerid",
    "DialState",
    # BridgeEnter/BridgeLeave name the bridge; its creation and destruction add nothing
    "BridgeCreate",
    "BridgeDestroy",
    # housekeeping the journal skips (journal/service.py `_SKIP`); registrations come over realtime
    "QueueMemberStatus",
    "DeviceStateChange",
    "ContactStatus",
    "PeerStatus",
    "ChallengeSent",
    "SuccessfulAuth",
    # one per channel every rtcpinterval while media flows
    "RTCPSent",
    "RTCPReceived",
)

REALTIME_FAMILIES = ("ps_endpoints", "ps_auths", "ps_aors", "ps_contacts", "queues", "queue_members", "musiconhold")


#: The dialplan context every call dialled on a phone enters (config_render.py); an Originate into it
#: is routed by Hotline's FastAGI router like a number the agent keyed, so the agent's limits apply.
PHONES_CONTEXT = "hotline-phones"
#: The context of the call-control extensions (hold, attended transfer) that config_render.py must
#: render: see `CONTROL_DIALPLAN` and docs/call-control.md.
CONTROL_CONTEXT = "hotline-control"
HOLD_EXTEN = "hold"  # hold by Redirect: the held party hears music on hold
HOLDING_EXTEN = "holding"  # hold by Redirect: the agent who put the call on hold waits in silence
# Atxfer keys its extension as DTMF, so these two must be digits
CONSULT_EXTEN = "0"  # attended transfer: the consultation leg goes where Hotline decided
QUEUE_HOLD_EXTEN = "1"  # hold of a queue call: a silent consultation leg (see `hold_by_transfer`)

#: The dialplan the hold and attended-transfer actions (hotline/features/calls) need on every node.
CONTROL_DIALPLAN = f"""; Call control (hotline/features/calls): hold and attended transfer.
[{CONTROL_CONTEXT}]
; hold by Redirect (calls without a queue): the held party hears its music class for at most an hour,
; the agent waits in silence; `hotline call unhold` bridges them again (AMI Bridge), and when that
; bridge ends the channel continues here and hangs up.
exten => {HOLD_EXTEN},1,Answer()
 same => n,MusicOnHold(,3600)
 same => n,Hangup()
exten => {HOLDING_EXTEN},1,Answer()
 same => n,Wait(3600)
 same => n,Hangup()
; hold of a queue call: an attended transfer to this silent leg, so the caller hears music on hold in
; the queue's own bridge; `unhold` cancels the transfer (AMI CancelAtxfer); after an hour it ends by itself.
exten => {QUEUE_HOLD_EXTEN},1,Answer()
 same => n,Wait(3600)
 same => n,Hangup()
; attended transfer: the consultation leg (a Local channel) goes where Hotline decided; the variables
; were set on the agent's channel with one leading underscore, so the consultation leg inherits them.
exten => {CONSULT_EXTEN},1,Goto(hotline-do-${{HOTLINE_ACTION}},s,1)
"""
#: features.conf [featuremap] entry the attended transfer needs (Asterisk's default maps nothing).
FEATUREMAP_ATXFER = "*2"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str
    sip_port: int
    ami_port: int
    rtp_start: int
    rtp_end: int


def render_node(settings: Settings, node: NodeSpec, ast_dir: str) -> dict[str, str]:
    """All configuration files of one node; `ast_dir` is the node folder as Asterisk sees it."""
    return {
        "asterisk.conf": _asterisk_conf(node, ast_dir),
        "modules.conf": _modules_conf(),
        "logger.conf": _logger_conf(),
        "manager.conf": _manager_conf(settings, node),
        "http.conf": "[general]\nenabled = no\n",
        "res_curl.conf": _res_curl_conf(settings, node),
        "extconfig.conf": _extconfig_conf(settings),
        "sorcery.conf": _sorcery_conf(),
        "pjsip.conf": _pjsip_conf(settings, node),
        "rtp.conf": f"[general]\nrtpstart = {node.rtp_start}\nrtpend = {node.rtp_end}\nrtcpinterval = 5000\n",
        "queues.conf": _queues_conf(),
        "musiconhold.conf": "[default]\nmode = files\ndirectory = moh\n",
        "extensions.conf": _extensions_conf(settings, node),
        "cdr.conf": "[general]\nenable = no\n",
        "cel.conf": "[general]\nenable = no\n",
        # attended transfer (AMI Atxfer) plays this feature code; Asterisk maps none by default
        "features.conf": f"[general]\n\n[featuremap]\natxfer => {FEATUREMAP_ATXFER}\n",
        "ccss.conf": "[general]\n",
        "udptl.conf": "[general]\n",
        "acl.conf": "",
        "indications.conf": _INDICATIONS,
        "stasis.conf": "",
        "pjproject.conf": "",
        "res_pjsip_endpoint_identifier_ip.conf": "",
    }


def _asterisk_conf(node: NodeSpec, d: str) -> str:
    return f"""[directories]
astetcdir => {d}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => {d}/lib
astkeydir => {d}/lib
astdatadir => /usr/share/asterisk
astagidir => {d}/lib
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astcachedir => {d}/lib
astsbindir => /usr/sbin

[options]
systemname = {node.name}
verbose = 1
debug = 0
maxload = 0
hideconnect = yes
"""


def _modules_conf() -> str:
    lines = ["[modules]", "autoload = no"]
    lines += [f"load = {m}" for m in MODULES]
    lines += ["require = chan_pjsip.so", "require = res_config_curl.so", "require = res_agi.so"]
    return "\n".join(lines) + "\n"


def _logger_conf() -> str:
    return """[general]
queue_log = yes
dateformat = %F %T.%3q

[logfiles]
console => notice,warning,error
messages.log => notice,warning,error,verbose
security.log => security
"""


def _manager_conf(settings: Settings, node: NodeSpec) -> str:
    return f"""[general]
enabled = yes
bindaddr = {node.address}
port = {node.ami_port}
timestampevents = yes
displayconnects = no
channelvars = HOTLINE_CALL_ID
; CDR/CEL are off; the journal builds call records from channel and queue events.
; Events nothing in Hotline reads are not even formatted (see DISABLED_EVENTS).
disabledevents = {",".join(DISABLED_EVENTS)}

[{settings.ami_username}]
secret = {settings.ami_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.0/255.0.0.0
read = system,call,agent,user,dtmf,reporting,security
write = system,call,agent,user,command,reporting,originate,agi
writetimeout = 5000
"""


def _res_curl_conf(settings: Settings, node: NodeSpec) -> str:
    return f"""[globals]
conntimeout = {settings.realtime_connect_timeout}
httptimeout = {settings.realtime_http_timeout}
failurecodes = 400,401,403,404,500,502,503,504
httpheader = X-Hotline-Token: {settings.realtime_token}
httpheader = X-Hotline-Node: {node.name}
"""


def _extconfig_conf(settings: Settings) -> str:
    base = settings.realtime_base_url
    lines = ["[settings]"]
    lines += [f"{fam} => curl,{base}/{fam}" for fam in REALTIME_FAMILIES]
    return "\n".join(lines) + "\n"


def _sorcery_conf() -> str:
    # Static objects (the carrier trunk) come from pjsip.conf, phones from realtime.
    # Identify stays static: realtime identify costs a /multi on every request (trap 7).
    #
    # Endpoints, auths and AORs are held in the node's own memory (res_sorcery_memory_cache with
    # full_backend_cache): a call or a REGISTER then costs no realtime request for them (each curl request
    # costs the node ~0.6-0.8 ms of CPU in func_curl's autoservice, bench/REALTIME.md; an endpoint is also
    # looked up on every device-state change of its channels). Hotline keeps the caches current: after every
    # change to phones, on every AMI (re)connect and every CACHE_LIFETIME_S/3 it sends
    # SorceryMemoryCachePopulate (features/cluster/service.py); object_lifetime_maximum bounds staleness if
    # that ever fails.
    # The cache must be the FIRST wizard of its type: filling it, sorcery asks the other wizards for every
    # object and stops at the first caching wizard once it holds any, so a cache listed after the
    # pjsip.conf wizard held only the carrier, and phones looked up past it stayed Unavailable (docs/lab.md).
    return f"""[res_pjsip]
endpoint/cache = memory_cache,full_backend_cache=yes,object_lifetime_maximum={CACHE_LIFETIME_S},expire_on_reload=yes
endpoint = config,pjsip.conf,criteria=type=endpoint
endpoint = realtime,ps_endpoints
auth/cache = memory_cache,full_backend_cache=yes,object_lifetime_maximum={CACHE_LIFETIME_S},expire_on_reload=yes
auth = config,pjsip.conf,criteria=type=auth
auth = realtime,ps_auths
aor/cache = memory_cache,full_backend_cache=yes,object_lifetime_maximum={CACHE_LIFETIME_S},expire_on_reload=yes
aor = config,pjsip.conf,criteria=type=aor
aor = realtime,ps_aors
contact = realtime,ps_contacts

[res_pjsip_endpoint_identifier_ip]
identify = config,pjsip.conf,criteria=type=identify
"""


def _pjsip_conf(settings: Settings, node: NodeSpec) -> str:
    matches = "\n".join(f"match = {net}" for net in settings.carrier_addresses)
    return f"""[global]
type = global
default_realm = {settings.sip_realm}
user_agent = Hotline-{node.name}
endpoint_identifier_order = ip,username
; one domain: skip the "user@domain" endpoint lookup PJSIP otherwise makes before "user" on every request
disable_multi_domain = yes
contact_expiration_check_interval = 30

[udp]
type = transport
protocol = udp
bind = {node.address}:{node.sip_port}

[carrier]
type = aor
contact = {settings.carrier_contact}

[carrier]
type = endpoint
transport = udp
aors = carrier
context = from-carrier
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes
send_pai = yes
trust_id_inbound = yes

[carrier]
type = identify
endpoint = carrier
{matches}
"""


def _queues_conf() -> str:
    # autofill: every waiting caller who has a free agent is rung at once.  app_queue's default (no) serves
    # only the caller at the head; the others look again once a second (RECHECK), so on a busy queue callers
    # piled up and each waited ~1 s although agents were free (bench/CALLS.md, 2026-12-07).
    return """[general]
autofill = yes
persistentmembers = no
shared_lastcall = yes
log_membername_as_agent = yes
log-caller-id-name = yes
"""


#: The channel variable that carries a routing decision's variables from the FastAGI router to the
#: dialplan, as the arguments of one MSet() (`mset_arguments`): one AGI round trip instead of one
#: `SET VARIABLE` per variable (bench/CALLS.md). The dialplan applies it once HOTLINE_ACTION is set.
DECISION_VARS = "HOTLINE_VARS"

# What Asterisk's argument parser (main/app.c __ast_app_separate_args, used by MSet) treats specially:
# `,` separates, `"` quotes, `\` escapes, and a `,` inside (), [] does not separate. Each gets a `\`.
_MSET_SPECIAL = re.compile(r'([\\,"()\[\]])')
_MSET_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]*(\([a-z-]+\))?")


def mset_arguments(pairs: Iterable[tuple[str, str]]) -> str:
    """`NAME=value,...` for MSet(), ending with `HOTLINE_VARS=` so the variable is cleared once applied
    (a later hop of the call then starts clean). Values are escaped: MSet splits the pairs on commas
    with the quote and backslash rules of dialplan arguments, then each pair at its first `=` (the value
    is taken verbatim from there). Names are Hotline's own: a variable or a function like CALLERID(name)."""
    out = []
    for name, value in (*pairs, (DECISION_VARS, "")):
        if not _MSET_NAME.fullmatch(name):
            raise ValueError(f"not a channel variable or function name: {name!r}")
        out.append(name + "=" + _MSET_SPECIAL.sub(r"\\\1", value))
    return ",".join(out)


# Numbers routed through Hotline: two characters or more, and single characters that are not the names
# of Asterisk's special extensions (s, h, i, t, T, e, a, o are letters, so single letters are left out).
ROUTED_PATTERNS = ("_[+0-9a-zA-Z*#].", "_[+0-9*#]")


def _routed_chain(script: str, settings: Settings, node: NodeSpec, agi: str, *, did: bool) -> str:
    """The priorities that hand a number to Hotline's router, once per routed pattern."""
    steps = ["Set(AGIEXITONHANGUP=yes)"]
    if did:
        steps.append("Set(__HOTLINE_DID=${EXTEN})")
    steps += [
        f"Set(TIMEOUT(absolute)={settings.agi_watchdog})",
        # the call id rides as an argument: one GET VARIABLE round trip less per call
        f"AGI({agi}/{script}?node={node.name},${{HOTLINE_CALL_ID}})",
        "Set(TIMEOUT(absolute)=0)",
        'GotoIf($["${HOTLINE_ACTION}" = ""]?hotline-fallback,s,1)',
        f"MSet(${{{DECISION_VARS}}})",
        "Goto(hotline-do-${HOTLINE_ACTION},s,1)",
    ]
    out = []
    for pattern in ROUTED_PATTERNS:
        out.append(f"exten => {pattern},1,{steps[0]}")
        out += [f" same => n,{step}" for step in steps[1:]]
    return "\n".join(out) + "\n"


_IVR_RETRY = (" same => n(retry),Goto(ask)",)


def _hop(
    script: str, args: str, settings: Settings, node: NodeSpec, agi: str, retry: str = "", after: tuple[str, ...] = ()
) -> str:
    """A later AGI hop of a call, under the same watchdog as the first; it sets HOTLINE_ACTION again.
    `retry`: the label to go to when Hotline answers 'ivr-retry'; `after`: more priorities of the context."""
    lines = [
        f" same => n,Set(TIMEOUT(absolute)={settings.agi_watchdog})",
        f" same => n,AGI({agi}/{script}?node={node.name},{args})",
        " same => n,Set(TIMEOUT(absolute)=0)",
        ' same => n,GotoIf($["${HOTLINE_ACTION}" = ""]?hotline-fallback,s,1)',
        f" same => n,MSet(${{{DECISION_VARS}}})",
    ]
    if retry:
        lines.append(f' same => n,GotoIf($["${{HOTLINE_ACTION}}" = "ivr-retry"]?{retry})')
    lines += [
        " same => n,Goto(hotline-do-${HOTLINE_ACTION},s,1)",
        *after,
        "exten => T,1,Set(TIMEOUT(absolute)=0)",
        " same => n,Set(HOTLINE_FALLBACK_REASON=watchdog)",
        " same => n,Goto(hotline-fallback,s,1)",
    ]
    return "\n".join(lines) + "\n"


def _code(script: str, settings: Settings, node: NodeSpec, agi: str) -> str:
    """A feature code: Hotline acts and sets HOTLINE_PROMPT, the phone hears it; Hotline down -> an error tone."""
    return (
        "\n".join(
            [
                f" same => n,Set(TIMEOUT(absolute)={settings.agi_watchdog})",
                f" same => n,AGI({agi}/{script}?node={node.name})",
                " same => n,Set(TIMEOUT(absolute)=0)",
                ' same => n,Playback(${IF($["${HOTLINE_PROMPT}" = ""]?beeperr:${HOTLINE_PROMPT})})',
                " same => n,Hangup()",
                "exten => T,1,Playback(beeperr)",
                " same => n,Hangup()",
            ]
        )
        + "\n"
    )


def _extensions_conf(settings: Settings, node: NodeSpec) -> str:
    agi = f"agi://{settings.agi_host}:{settings.agi_port}"
    fallback_dial = settings.fallback_dial
    return f"""; Rendered by Hotline for {node.name}. Routing decisions come from Hotline's FastAGI router;
; this file only carries them out, and holds the fallback for when Hotline cannot decide.
[general]
static = yes
writeprotect = yes

[globals]
HOTLINE_NODE = {node.name}
HOTLINE_FALLBACK_DIAL = {fallback_dial}
HOTLINE_FALLBACK_CAUSE = {settings.fallback_cause}

[from-carrier]
exten => _X!,1,Goto(hotline-inbound,${{EXTEN}},1)
exten => _+X.,1,Goto(hotline-inbound,${{EXTEN}},1)
exten => s,1,Goto(hotline-inbound,s,1)

[hotline-inbound]
{_routed_chain("inbound", settings, node, agi, did=True)}exten => s,1,Goto(hotline-inbound,anonymous,1)
; The AGI watchdog fired: Hotline accepted the call but did not decide in time (hung or overloaded).
exten => T,1,Set(TIMEOUT(absolute)=0)
 same => n,Set(HOTLINE_FALLBACK_REASON=watchdog)
 same => n,Goto(hotline-fallback,s,1)
exten => h,1,NoOp(hang-up during routing)

[hotline-phones]
{_routed_chain("outbound", settings, node, agi, did=False)}exten => T,1,Set(TIMEOUT(absolute)=0)
 same => n,Set(HOTLINE_FALLBACK_REASON=watchdog)
 same => n,Goto(hotline-fallback,s,1)

; Early media first (183 with SDP): callers hear the queue's music and announcements before an agent
; answers, and the call is answered (billed) only when an agent takes it.
[hotline-do-queue]
exten => s,1,Progress()
 same => n,Set(QUEUE_PRIO=${{HOTLINE_QUEUE_PRIO}})
 same => n,Queue(${{HOTLINE_QUEUE}},t,,,${{HOTLINE_QUEUE_TIMEOUT}})
; no agent took the call (timeout, full, empty): Hotline decides (the queue's overflow, else a hang-up)
 same => n,NoOp(queue ${{HOTLINE_QUEUE}} ended with ${{QUEUESTATUS}})
{_hop("overflow", "${HOTLINE_CALL_ID},${HOTLINE_QUEUE},${QUEUESTATUS}", settings, node, agi)}
[hotline-do-dial]
exten => s,1,Dial(${{HOTLINE_DIAL}},${{HOTLINE_DIAL_TIMEOUT}})
 same => n,Hangup()

; A message (early media, the call is not answered) then the hang-up cause.
[hotline-do-hangup]
exten => s,1,GotoIf($["${{HOTLINE_MESSAGE}}" = ""]?bye)
 same => n,Progress()
 same => n,Playback(${{HOTLINE_MESSAGE}},noanswer)
 same => n(bye),Hangup(${{HOTLINE_CAUSE}})

; A call refused by its agent group's limits (the journal says why).
[hotline-do-refused]
exten => s,1,Goto(hotline-do-hangup,s,1)

; SIP redirect: Transfer() on a channel that is not answered ends the INVITE with 302 and this Contact
; (chan_pjsip transfer_redirect). Nothing may answer the channel before.
[hotline-do-redirect]
exten => s,1,Transfer(PJSIP/${{HOTLINE_REDIRECT}})
 same => n,Log(WARNING,Redirect of ${{HOTLINE_CALL_ID}} to ${{HOTLINE_REDIRECT}}: ${{TRANSFERSTATUS}} ${{TRANSFERSTATUSPROTOCOL}})
 same => n,Hangup(${{IF($["${{TRANSFERSTATUS}}" = "SUCCESS"]?16:41)}})

; IVR menu: prompt, one digit, Hotline decides (an option, a retry with "invalid" + the prompt, or the
; menu's failure path).
[hotline-do-ivr]
exten => s,1,Answer()
 same => n,Set(HOTLINE_IVR_TRY=0)
 same => n(ask),Set(HOTLINE_IVR_TRY=$[${{HOTLINE_IVR_TRY}} + 1])
 same => n,Read(HOTLINE_DIGIT,${{HOTLINE_IVR_ASK}},1,,1,${{HOTLINE_IVR_TIMEOUT}})
{_hop("ivr", "${HOTLINE_CALL_ID},${HOTLINE_IVR},${HOTLINE_DIGIT},${HOTLINE_IVR_TRY}", settings, node, agi, retry="retry", after=_IVR_RETRY)}

; Agents' feature codes. The PIN is read into a variable that the AGI reads with GET VARIABLE.
[hotline-do-login]
exten => s,1,Answer()
 same => n,Read(HOTLINE_AGENT_NUM,agent-user,32,,2,8)
 same => n,Read(HOTLINE_AGENT_PIN,agent-pass,12,,2,8)
{_code("login", settings, node, agi)}
[hotline-do-logoff]
exten => s,1,Answer()
{_code("logoff", settings, node, agi)}
[hotline-do-pause]
exten => s,1,Answer()
{_code("pause", settings, node, agi)}
[hotline-do-unpause]
exten => s,1,Answer()
{_code("unpause", settings, node, agi)}
; Hotline was down, refused, failed or too slow. The call still goes somewhere: the configured fallback
; Dial() target, else a message and a hang-up with the fallback cause. A call id is made up from the
; node-unique uniqueid so the call can still be traced in Asterisk's logs.
[hotline-fallback]
exten => s,1,Set(__HOTLINE_CALL_ID=${{IF($["${{HOTLINE_CALL_ID}}" = ""]?fb-${{UNIQUEID}}:${{HOTLINE_CALL_ID}})}})
 same => n,UserEvent(HotlineFallback,Reason: ${{IF($["${{HOTLINE_FALLBACK_REASON}}" = ""]?agi-${{AGISTATUS}}:${{HOTLINE_FALLBACK_REASON}})}},Exten: ${{HOTLINE_DID}})
 same => n,Log(WARNING,Hotline fallback for ${{CALLERID(num)}} reason=${{HOTLINE_FALLBACK_REASON}} agi=${{AGISTATUS}})
 same => n,GotoIf($["${{HOTLINE_FALLBACK_DIAL}}" = ""]?message)
 same => n,Dial(${{HOTLINE_FALLBACK_DIAL}},60)
 same => n,Hangup()
 same => n(message),Answer()
 same => n,Playback(ss-noservice)
 same => n,Hangup(${{HOTLINE_FALLBACK_CAUSE}})

{CONTROL_DIALPLAN}"""


_INDICATIONS = """[general]
country = us

[us]
description = United States / North America
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
callwaiting = 440/300,0/10000
dialrecall = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
record = 1400/500,0/15000
info = !950/330,!1400/330,!1800/330,0
stutter = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
"""
