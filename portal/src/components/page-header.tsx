import type { ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';

/** The page's one h1 (also the tab's title) and its actions on the right. */
export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · edgeml`;
  }, [title]);
  return (
    <header class="page-header">
      <h1>{title}</h1>
      {children ? <div class="actions">{children}</div> : null}
    </header>
  );
}
