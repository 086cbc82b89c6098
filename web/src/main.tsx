import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './app/App';
import { takeTokenFromLocation } from './app/auth';
import './styles.css';

// Before anything renders: a `#token=…` sign-in link leaves the address bar at once.
takeTokenFromLocation();

const root = document.getElementById('root');
if (root === null) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
