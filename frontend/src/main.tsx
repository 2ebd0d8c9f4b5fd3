import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'katex/dist/katex.min.css';
import './styles/app.css';
import { App } from './components/App';
import { AppProvider } from './hooks/app';
import { ChatApp } from './lib/chat';
import { applyTheme, loadTheme } from './lib/theme';

applyTheme(loadTheme());
const app = new ChatApp();

declare global {
  interface Window {
    /** Debug hooks (used by the end-to-end tests): cut the live connection, see the transport. */
    __chatd?: { app: ChatApp; dropConnection: () => void; transport: () => string | null };
  }
}
window.__chatd = { app, dropConnection: () => app.dropConnection(), transport: () => app.transportKind() };

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <AppProvider value={app}>
      <App />
    </AppProvider>
  </StrictMode>,
);
app.start();
