import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'katex/dist/katex.min.css';
import './styles/app.css';
import { App } from './components/App';
import { AppProvider } from './hooks/app';
import { ChatApp } from './lib/chat';
import { applyTheme, loadTheme } from './lib/theme';
import { activePath } from './lib/thread';

applyTheme(loadTheme());
const app = new ChatApp();

declare global {
  interface Window {
    /** Debug hooks (used by the end-to-end tests): cut the live connection, see the transport. */
    __chatd?: {
      app: ChatApp;
      dropConnection: () => void;
      transport: () => string | null;
      shown: () => Array<{ id: string; role: string; status: string; content: string; reasoning: string; omittedMessages: number }>;
    };
  }
}
window.__chatd = {
  app,
  dropConnection: () => app.dropConnection(),
  transport: () => app.transportKind(),
  shown: () => {
    const s = app.store.state;
    const t = s.route.name === 'chat' && s.route.conversationId ? s.threads[s.route.conversationId] : undefined;
    return t
      ? activePath(t).map((m) => ({
          id: m.id,
          role: m.role,
          status: m.status,
          content: m.content,
          reasoning: m.reasoning ?? '',
          omittedMessages: m.omittedMessages ?? 0,
        }))
      : [];
  },
};

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <AppProvider value={app}>
      <App />
    </AppProvider>
  </StrictMode>,
);
app.start();
