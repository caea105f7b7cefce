// Audio and video calls over RTCPeerConnection, signalled with the Call* messages of §3.
//
// One call at a time. The call's `state` mirrors the server's: ringing → active → ended.
// Renegotiation (camera on, screen share) follows the "perfect negotiation" pattern: either
// side offers on `negotiationneeded`; when offers cross, the callee (polite) yields and the
// caller (impolite) ignores the callee's offer.

import { describeCallError } from "./errors.js";

const ENDINGS = {
  answered_elsewhere: "Answered on another device",
  rejected_elsewhere: "Declined on another device",
  timeout: "No answer",
  disconnected: "The other side disconnected",
  removed: "Ended: a participant may no longer call in this conversation",
  busy: "Busy",
};

export class CallController {
  /**
   * @param {import("./hubbub.js").HubbubClient} client
   * @param {{onChange: (call: object|null) => void, nameOf: (userId: string) => string}} hooks
   */
  constructor(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.call = null;
    this.endedIds = new Set();
    this.iceServers = loadIceServers();
    client.on("CallOffer", (m) => this.onOffer(m));
    client.on("CallAnswer", (m) => this.onAnswer(m));
    client.on("ICECandidate", (m) => this.onCandidate(m));
    client.on("CallHangup", (m) => this.onHangup(m));
    client.on("CallReject", (m) => this.onReject(m));
  }

  /** Fire and forget: the response is awaited but a refusal only logged. */
  notify(type, fields) {
    this.client.request(type, fields).catch((error) => console.debug(type, "refused:", error.code));
  }

  get busy() {
    return this.call !== null && this.call.state !== "ended";
  }

  // -- placing and taking calls ----------------------------------------------------------

  /** Call `peerId` in a conversation; `targetUserId` is omitted in a direct one (§3). */
  async start(conversationId, type, peerId, peerName, targetUserId) {
    if (this.busy) throw new Error("Already in a call");
    const call = this.newCall({
      id: crypto.randomUUID(), conversationId, type, peerId, peerName, targetUserId,
      role: "caller", polite: false, status: `Calling ${peerName}…`,
    });
    try {
      call.localStream = await navigator.mediaDevices.getUserMedia(
        { audio: true, video: type === "video" });
    } catch (error) {
      this.finish(call, describeCallError(error));
      return;
    }
    if (call.state === "ended") return;
    this.createPeer(call);
    for (const track of call.localStream.getTracks()) call.pc.addTrack(track, call.localStream);
    this.changed();
    // negotiationneeded sends the first CallOffer (see makeOffer).
  }

  async answer() {
    const call = this.call;
    if (!call || call.role !== "callee" || call.state !== "ringing" || call.answering) return;
    call.answering = true;
    call.status = "Connecting…";
    this.changed();
    try {
      call.localStream = await navigator.mediaDevices.getUserMedia(
        { audio: true, video: call.type === "video" });
    } catch (error) {
      this.notify("CallReject", { call_id: call.id, reason: "no media" });
      this.finish(call, describeCallError(error));
      return;
    }
    if (call.state === "ended") return;
    const pc = this.createPeer(call);
    await pc.setRemoteDescription({ type: "offer", sdp: call.remoteOffer });
    for (const track of call.localStream.getTracks()) pc.addTrack(track, call.localStream);
    await pc.setLocalDescription();
    if (call.state === "ended") return;  // the caller gave up meanwhile
    try {
      await this.client.request("CallAnswer", { call_id: call.id, sdp: pc.localDescription.sdp });
    } catch (error) {
      this.finish(call, `Could not answer. ${describeCallError(error)}`);
      return;
    }
    if (call.state === "ended") return;
    call.state = "active";
    call.status = `In call with ${call.peerName}`;
    this.startTrickle(call);
    await this.flushRemoteCandidates(call);
    if (call.renegotiate) this.makeOffer(call);
    this.changed();
  }

  decline() {
    const call = this.call;
    if (!call || call.state !== "ringing" || call.role !== "callee") return;
    this.notify("CallReject", { call_id: call.id });
    this.finish(call, "Declined");
  }

  hangUp() {
    const call = this.call;
    if (!call || call.state === "ended") return;
    this.notify("CallHangup", { call_id: call.id });
    this.finish(call, "Call ended");
  }

  dismiss() {
    if (this.call && this.call.state === "ended") {
      this.call = null;
      this.changed();
    }
  }

  // -- media controls --------------------------------------------------------------------

  toggleMute() {
    const call = this.call;
    if (!call || !call.localStream) return;
    call.muted = !call.muted;
    for (const track of call.localStream.getAudioTracks()) track.enabled = !call.muted;
    this.changed();
  }

  /** Turn the camera off and on; an audio call gets a camera track (a renegotiation). */
  async toggleCamera() {
    const call = this.call;
    if (!call || call.state !== "active") return;
    const cameras = call.localStream.getVideoTracks();
    if (cameras.length > 0) {
      call.cameraOff = !call.cameraOff;
      for (const track of cameras) track.enabled = !call.cameraOff;
      this.changed();
      return;
    }
    const video = await navigator.mediaDevices.getUserMedia({ video: true });
    const track = video.getVideoTracks()[0];
    call.localStream.addTrack(track);
    call.type = "video";
    call.pc.addTrack(track, call.localStream);
    call.cameraOff = false;
    this.changed();
  }

  /** Share the screen as a second video track (a renegotiation), or stop sharing. */
  async toggleScreen() {
    const call = this.call;
    if (!call || call.state !== "active") return;
    if (call.screenSender) {
      this.stopScreen(call);
      return;
    }
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = display.getVideoTracks()[0];
    track.addEventListener("ended", () => this.stopScreen(call));
    call.screenStream = display;
    call.screenSender = call.pc.addTrack(track, display);
    call.type = "video";
    this.changed();
  }

  stopScreen(call) {
    if (!call.screenSender) return;
    const sender = call.screenSender;
    call.screenSender = null;
    if (sender.track) sender.track.stop();
    if (call.pc && call.pc.signalingState !== "closed") call.pc.removeTrack(sender);
    this.changed();
  }

  /** Sum of bytes received over every inbound RTP stream, or of one track's (for tests). */
  async inboundBytes(trackId) {
    if (!this.call || !this.call.pc) return 0;
    let bytes = 0;
    const stats = await this.call.pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && (!trackId || report.trackIdentifier === trackId)) {
        bytes += report.bytesReceived || 0;
      }
    });
    return bytes;
  }

  // -- signalling from the server --------------------------------------------------------

  onOffer(msg) {
    if (this.endedIds.has(msg.call_id)) return;
    const call = this.call;
    if (call && call.id === msg.call_id) {
      this.onRenegotiation(call, msg);
      return;
    }
    if (this.busy) {
      this.notify("CallReject", { call_id: msg.call_id, reason: "busy" });
      return;
    }
    this.newCall({
      id: msg.call_id, conversationId: msg.conversation_id, type: msg.call_type,
      peerId: msg.from_user_id, peerName: this.hooks.nameOf(msg.from_user_id),
      role: "callee", polite: true, remoteOffer: msg.sdp,
      status: `Incoming ${msg.call_type} call from ${this.hooks.nameOf(msg.from_user_id)}`,
    });
  }

  async onRenegotiation(call, msg) {
    const pc = call.pc;
    if (!pc || call.state !== "active") return;
    const collision = call.makingOffer || pc.signalingState !== "stable";
    call.ignoreOffer = !call.polite && collision;
    if (call.ignoreOffer) return;
    if (msg.call_type === "video") call.type = "video";
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    await pc.setLocalDescription();
    this.notify("CallAnswer", { call_id: call.id, sdp: pc.localDescription.sdp });
    this.changed();
  }

  async onAnswer(msg) {
    const call = this.call;
    if (!call || call.id !== msg.call_id || !call.pc) return;
    // Only an answer to our own pending offer applies; anything else is stale.
    if (call.pc.signalingState !== "have-local-offer") return;
    await call.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    if (call.state === "ringing") {  // (not "ended": a hangup may have come meanwhile)
      call.state = "active";
      call.status = `In call with ${call.peerName}`;
      await this.flushRemoteCandidates(call);
      if (call.renegotiate) this.makeOffer(call);
    }
    this.changed();
  }

  async onCandidate(msg) {
    const call = this.call;
    if (!call || call.id !== msg.call_id) return;
    const candidate = typeof msg.candidate === "string"
      ? { candidate: msg.candidate, sdpMLineIndex: 0 } : msg.candidate;
    if (!call.pc || !call.pc.remoteDescription) {
      call.remoteCandidates.push(candidate);
      return;
    }
    try {
      await call.pc.addIceCandidate(candidate);
    } catch (error) {
      if (!call.ignoreOffer) console.debug("ICE candidate refused:", error.name);
    }
  }

  onHangup(msg) {
    const call = this.call;
    if (!call || call.id !== msg.call_id || call.state === "ended") return;
    const text = ENDINGS[msg.reason] || `${call.peerName} hung up`;
    this.finish(call, text);
  }

  onReject(msg) {
    const call = this.call;
    if (!call || call.id !== msg.call_id || call.state === "ended") return;
    this.finish(call, msg.reason === "busy" ? `${call.peerName} is busy` : `${call.peerName} declined`);
  }

  // -- plumbing --------------------------------------------------------------------------

  newCall(fields) {
    this.call = {
      state: "ringing", pc: null, localStream: null, screenSender: null, screenStream: null,
      remoteTracks: [], remoteStreams: new Map(), remoteCandidates: [], localCandidates: [],
      trickle: false, offerSent: false, makingOffer: false, ignoreOffer: false,
      renegotiate: false, muted: false, cameraOff: false, answering: false,
      endReason: null, ...fields,
    };
    this.changed();
    return this.call;
  }

  createPeer(call) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    call.pc = pc;
    pc.addEventListener("negotiationneeded", () => this.makeOffer(call));
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (!candidate || call.state === "ended") return;
      if (call.trickle) this.sendCandidate(call, candidate.toJSON());
      else call.localCandidates.push(candidate.toJSON());
    });
    pc.addEventListener("track", ({ track, streams }) => {
      call.remoteTracks.push(track);
      const stream = streams[0] || new MediaStream([track]);
      call.remoteStreams.set(stream.id, stream);
      stream.addEventListener("removetrack", () => {
        if (stream.getTracks().length === 0) call.remoteStreams.delete(stream.id);
        this.changed();
      });
      this.changed();
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && call.state !== "ended") {
        this.notify("CallHangup", { call_id: call.id, reason: "connection failed" });
        this.finish(call, "The connection failed");
        return;
      }
      this.changed();
    });
    return pc;
  }

  /** negotiationneeded: the first offer places the call; later ones renegotiate (§3). */
  async makeOffer(call) {
    const pc = call.pc;
    if (!pc || call.state === "ended") return;
    // Renegotiating is for active calls only: remember the wish until the answer.
    if (call.offerSent && call.state !== "active") {
      call.renegotiate = true;
      return;
    }
    if (call.role === "callee" && call.state !== "active") {
      call.renegotiate = true;
      return;
    }
    call.renegotiate = false;
    const first = !call.offerSent;
    try {
      call.makingOffer = true;
      await pc.setLocalDescription();
      const message = {
        conversation_id: call.conversationId, call_id: call.id,
        sdp: pc.localDescription.sdp, call_type: call.type,
      };
      if (first && call.targetUserId) message.target_user_id = call.targetUserId;
      call.offerSent = true;
      const sent = this.client.request("CallOffer", message);
      call.makingOffer = false;
      await sent;
      if (first) this.startTrickle(call);
    } catch (error) {
      if (first) this.finish(call, `The call could not be placed. ${describeCallError(error)}`);
      else console.debug("renegotiation refused:", error.code || error.name);
    } finally {
      call.makingOffer = false;
    }
  }

  /** Send the candidates gathered before the server knew the call, then trickle. */
  startTrickle(call) {
    call.trickle = true;
    for (const candidate of call.localCandidates.splice(0)) this.sendCandidate(call, candidate);
  }

  sendCandidate(call, candidate) {
    this.notify("ICECandidate", { call_id: call.id, candidate });
  }

  async flushRemoteCandidates(call) {
    for (const candidate of call.remoteCandidates.splice(0)) {
      try {
        await call.pc.addIceCandidate(candidate);
      } catch (error) {
        console.debug("ICE candidate refused:", error.name);
      }
    }
  }

  finish(call, text) {
    if (call.state === "ended") return;
    call.state = "ended";
    call.status = text;
    this.endedIds.add(call.id);
    for (const stream of [call.localStream, call.screenStream]) {
      if (stream) for (const track of stream.getTracks()) track.stop();
    }
    if (call.pc) call.pc.close();
    this.changed();
  }

  changed() {
    this.hooks.onChange(this.call);
  }
}

/** STUN/TURN servers, e.g. `[{"urls": "stun:stun.example.org"}]`, from localStorage
 * `hubbub.iceServers`; none by default (peers on one network need none). */
function loadIceServers() {
  try {
    const raw = localStorage.getItem("hubbub.iceServers");
    return raw ? JSON.parse(raw) : [];
  } catch {
    return [];
  }
}
