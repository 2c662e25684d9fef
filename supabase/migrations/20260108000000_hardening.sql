-- Rules that the functions check must also hold for every other path into the database
-- (PostgREST at /rest/v1, Realtime, a client with the anon key and a user's token).

-- 1. What needs MFA in the API needs it in the database: deleting a workspace, and granting
--    or removing the owner role. Restrictive policies, so they narrow the permissive ones.
--    (A workspace's first owner is added by a security definer trigger and is not affected.)

drop policy if exists "deleting a workspace needs aal2" on public.workspaces;
create policy "deleting a workspace needs aal2"
  on public.workspaces as restrictive for delete to authenticated
  using ((select auth.jwt() ->> 'aal') = 'aal2');

drop policy if exists "granting owner needs aal2" on public.workspace_members;
create policy "granting owner needs aal2"
  on public.workspace_members as restrictive for insert to authenticated
  with check (role <> 'owner' or (select auth.jwt() ->> 'aal') = 'aal2');

drop policy if exists "changing an owner's role needs aal2" on public.workspace_members;
create policy "changing an owner's role needs aal2"
  on public.workspace_members as restrictive for update to authenticated
  using (role <> 'owner' or (select auth.jwt() ->> 'aal') = 'aal2')
  with check (role <> 'owner' or (select auth.jwt() ->> 'aal') = 'aal2');

drop policy if exists "removing an owner needs aal2" on public.workspace_members;
create policy "removing an owner needs aal2"
  on public.workspace_members as restrictive for delete to authenticated
  using (role <> 'owner' or (select auth.jwt() ->> 'aal') = 'aal2');

-- 2. Files follow their attachment rows: a file may be uploaded only where an attachment row
--    names it (so the function's size and type checks cannot be skipped), and replaced or
--    deleted only by its uploader or an owner or admin, as the rows are.

drop policy if exists "attachments: members upload objects" on storage.objects;
create policy "attachments: members upload objects"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
    and exists (select 1 from public.attachments a where a.storage_path = name)
  );

drop policy if exists "attachments: members replace objects" on storage.objects;
create policy "attachments: members replace objects"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'attachments'
    and (
      (owner = (select auth.uid())
        and private.workspace_id_of_object(name)
          in (select private.workspace_ids('{owner,admin,member}')))
      or private.workspace_id_of_object(name) in (select private.workspace_ids('{owner,admin}'))
    )
  )
  with check (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
  );

drop policy if exists "attachments: members delete objects" on storage.objects;
create policy "attachments: members delete objects"
  on storage.objects for delete to authenticated
  using (
    bucket_id = 'attachments'
    and (
      (owner = (select auth.uid())
        and private.workspace_id_of_object(name)
          in (select private.workspace_ids('{owner,admin,member}')))
      or private.workspace_id_of_object(name) in (select private.workspace_ids('{owner,admin}'))
    )
  );
