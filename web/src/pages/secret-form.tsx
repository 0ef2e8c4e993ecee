/**
 * Create a secret, or edit one's details. The server's rules are checked as the user types
 * (../rules.ts); nothing is sent while a field breaks one; what the server still refuses is
 * shown next to the field its `details` name.
 */
import { type FormEvent, useEffect, useState } from "react";
import { describeError, SigylApiError, unwrap } from "../api.ts";
import { href, navigate } from "../router.ts";
import {
  checkSecretFields, type FieldErrors, isoToLocal, localToIso, mapDetails, parseTags, SECRET_TYPES, type SecretFields,
  type SecretType,
} from "../rules.ts";
import { useSession } from "../session.tsx";
import { Alert, ErrorAlert, Field, Loading } from "../ui.tsx";

const EMPTY: SecretFields = { name: "", value: "", secretType: "custom", description: "", tags: "", expiresAt: "" };

export default function SecretForm({ id }: { id?: string }) {
  const { api } = useSession();
  const editing = id !== undefined;
  const [fields, setFields] = useState<SecretFields>(EMPTY);
  const [initial, setInitial] = useState<SecretFields | null>(editing ? null : EMPTY);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [touched, setTouched] = useState<Set<keyof SecretFields>>(new Set());
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!id) return;
    unwrap(api.GET("/secrets/{id}", { params: { path: { id } } })).then((s) => {
      const f: SecretFields = {
        name: s.name, value: "", secretType: s.secretType, description: s.description,
        tags: s.tags.join(", "), expiresAt: isoToLocal(s.expiresAt),
      };
      setFields(f);
      setInitial(f);
    }, setLoadError);
  }, [api, id]);

  const errors = checkSecretFields(fields, !editing);
  const shown = (key: keyof SecretFields) => serverErrors[key] ?? (touched.has(key) ? errors[key] : undefined);

  const set = (key: keyof SecretFields) => (value: string) => {
    setFields((f) => ({ ...f, [key]: value }));
    setTouched((t) => new Set(t).add(key));
    setServerErrors(({ [key]: _dropped, ...rest }) => rest);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(new Set(Object.keys(EMPTY) as (keyof SecretFields)[]));
    setFormError(null);
    if (Object.keys(errors).length > 0) {
      setFormError("Correct the fields marked above; nothing was sent.");
      return;
    }
    setBusy(true);
    try {
      const expiresAt = localToIso(fields.expiresAt) || null;
      if (editing) {
        const was = initial!;
        const patch = {
          ...(fields.name !== was.name && { name: fields.name }),
          ...(fields.secretType !== was.secretType && { secretType: fields.secretType }),
          ...(fields.description !== was.description && { description: fields.description }),
          ...(fields.tags !== was.tags && { tags: parseTags(fields.tags) }),
          ...(fields.expiresAt !== was.expiresAt && { expiresAt }),
        };
        if (Object.keys(patch).length === 0) {
          navigate(href.secret(id));
          return;
        }
        await unwrap(api.PATCH("/secrets/{id}", { params: { path: { id } }, body: patch }));
        navigate(href.secret(id));
      } else {
        const created = await unwrap(api.POST("/secrets", {
          body: {
            name: fields.name, value: fields.value, secretType: fields.secretType,
            description: fields.description, tags: parseTags(fields.tags), expiresAt,
          },
        }));
        // The typed value leaves memory with this form.
        setFields(EMPTY);
        navigate(href.secret(created.id));
      }
    } catch (err) {
      if (err instanceof SigylApiError && err.code === "name_taken") {
        setServerErrors({ name: "Another live secret of yours has this name." });
      } else if (err instanceof SigylApiError && err.code === "invalid_request") {
        const mapped = mapDetails(err.details, err.message);
        setServerErrors(mapped.fields);
        setFormError(mapped.other);
      } else {
        setFormError(describeError(err));
      }
    } finally {
      setBusy(false);
    }
  };

  if (loadError) return <section><h1>Edit secret</h1><ErrorAlert error={loadError} /></section>;
  if (!initial) return <Loading what="the secret" />;

  return (
    <section>
      <h1>{editing ? `Edit ${initial.name}` : "New secret"}</h1>
      <form className="card form" onSubmit={submit} noValidate>
        <Field label="Name" error={shown("name")} hint="Like an env var: a letter or _, then letters, digits, _ . - (up to 128).">
          {(p) => <input {...p} className="mono" autoComplete="off" spellCheck={false} value={fields.name} onChange={(e) => set("name")(e.target.value)} />}
        </Field>
        {!editing && (
          <Field label="Value" error={shown("value")} hint="Encrypted before it is stored; up to 64 KiB.">
            {(p) => (
              <textarea {...p} className="mono secret-input" rows={3} autoComplete="off" spellCheck={false}
                value={fields.value} onChange={(e) => set("value")(e.target.value)} />
            )}
          </Field>
        )}
        <Field label="Type" error={shown("secretType")}>
          {(p) => (
            <select {...p} value={fields.secretType} onChange={(e) => set("secretType")(e.target.value as SecretType)}>
              {SECRET_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          )}
        </Field>
        <Field label="Description" error={shown("description")} hint="Optional, up to 1000 characters.">
          {(p) => <textarea {...p} rows={2} value={fields.description} onChange={(e) => set("description")(e.target.value)} />}
        </Field>
        <Field label="Tags" error={shown("tags")} hint="Separated by commas: up to 20, each up to 64 characters.">
          {(p) => <input {...p} autoComplete="off" value={fields.tags} onChange={(e) => set("tags")(e.target.value)} />}
        </Field>
        <Field label="Expires at" error={shown("expiresAt")} hint="Optional; in the future. An expired secret stops serving its value.">
          {(p) => <input {...p} type="datetime-local" value={fields.expiresAt} onChange={(e) => set("expiresAt")(e.target.value)} />}
        </Field>
        {formError && <Alert>{formError}</Alert>}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>{editing ? "Save changes" : "Create secret"}</button>
          <a className="button" href={editing ? href.secret(id) : href.secrets()}>Cancel</a>
        </div>
      </form>
    </section>
  );
}
