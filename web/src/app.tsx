/** The signed-in console: navigation and the page of the current route. */
import { lazy, Suspense, useEffect, useRef } from "react";
import { href, type Route, useRoute } from "./router.ts";
import { useSession } from "./session.tsx";
import { Loading } from "./ui.tsx";
import { SecretsList } from "./pages/secrets-list.tsx";

// Pages past the list load on first use, keeping the initial script small.
const SecretPage = lazy(() => import("./pages/secret-page.tsx"));
const SecretForm = lazy(() => import("./pages/secret-form.tsx"));
const AuditViewer = lazy(() => import("./pages/audit-viewer.tsx"));
const DeploymentWizard = lazy(() => import("./pages/deployment-wizard.tsx"));

const TITLES: Record<Route["page"], string> = {
  secrets: "Secrets", new: "New secret", secret: "Secret", edit: "Edit secret", activity: "My activity",
  deleted: "Deleted secrets", deployments: "Deployments", deployment: "Deployment", unknown: "Not found",
};

export function App() {
  const route = useRoute();
  const { signOut, email } = useSession();
  const main = useRef<HTMLElement>(null);

  useEffect(() => {
    document.title = `${TITLES[route.page]} · Sigyl Secrets`;
    main.current?.focus({ preventScroll: true });
  }, [route]);

  const current = (page: Route["page"][]) => (page.includes(route.page) ? "page" : undefined);

  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
      <header className="top">
        <a className="brand" href={href.secrets()}>Sigyl Secrets</a>
        <nav aria-label="Console">
          <a href={href.secrets()} aria-current={current(["secrets", "secret", "edit"])}>Secrets</a>
          <a href={href.newSecret()} aria-current={current(["new"])}>New secret</a>
          <a href={href.deployments()} aria-current={current(["deployments", "deployment"])}>Deployments</a>
          <a href={href.activity()} aria-current={current(["activity"])}>My activity</a>
          <a href={href.deleted()} aria-current={current(["deleted"])}>Deleted</a>
        </nav>
        <div className="who">
          <span className="email">{email}</span>
          <button type="button" onClick={signOut}>Sign out</button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Suspense fallback={<Loading what="the page" />}>
          <Page route={route} />
        </Suspense>
      </main>
    </>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "secrets": return <SecretsList deleted={false} />;
    case "deleted": return <SecretsList deleted />;
    case "new": return <SecretForm />;
    case "edit": return <SecretForm key={route.id} id={route.id} />;
    case "secret": return <SecretPage key={route.id} id={route.id} />;
    case "activity": return <AuditViewer />;
    case "deployments": return <DeploymentWizard />;
    case "deployment": return <DeploymentWizard key={route.id} id={route.id} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>No page here. <a href={href.secrets()}>Back to your secrets</a>.</p>
        </section>
      );
  }
}
