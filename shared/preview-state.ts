// The preview panel's state machine, a pure function shared by the webview (which renders the
// state and keeps it with setState) and the extension (which mirrors it to save the image and to
// run a new seed or a comparison after a reload, from the state the serializer hands back).
import type { PanelState, ToWebview } from './preview-messages';

export function nextState(state: PanelState | undefined, msg: ToWebview): PanelState | undefined {
  if (msg.type === 'state') return msg.state;
  if (msg.type === 'start') {
    // A comparison runs on the image already shown: keep it until the predicted side replaces it.
    const preview = msg.kind === 'compare' ? state?.preview : undefined;
    return { subject: msg.subject, kind: msg.kind, status: 'running', trusted: msg.trusted, preview };
  }
  if (!state) return undefined;
  switch (msg.type) {
    case 'progress':
      return { ...state, live: { step: msg.step, total: msg.total, phase: msg.phase, image: msg.image ?? state.live?.image } };
    case 'preview':
      return { ...state, status: 'done', live: undefined, preview: msg.result, compare: undefined, saved: undefined };
    case 'compare':
      return { ...state, status: 'done', live: undefined, compare: msg.result };
    case 'cancelled':
      return { ...state, status: 'cancelled' };
    case 'error':
      return { ...state, status: 'error', error: msg.message };
    case 'saved':
      return { ...state, saved: msg.path };
    case 'trust':
      return { ...state, trusted: msg.trusted };
  }
}
