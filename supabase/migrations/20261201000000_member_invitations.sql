-- Invitations made through the members function pass the Before User Created hook.
--
-- When an owner or admin adds an address that has no account, the members function asks
-- Supabase Auth to invite it. Supabase Auth calls the Before User Created hook during that
-- invite (internal/api/invite.go), before it creates the user; the hook lets an address
-- through a denied domain only when public.signup_invitations holds it. So the function
-- records the address first, through this helper, as the caller: the helper checks that the
-- caller manages the workspace (the table itself is the service role's alone).

create or replace function private.record_signup_invitation(ws uuid, invited_email text)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  address text := pg_catalog.lower(pg_catalog.btrim(invited_email));
begin
  if coalesce(private.member_role(ws), '') not in ('owner', 'admin') then
    raise exception 'only owners and admins of the workspace invite'
      using errcode = '42501';
  end if;
  insert into public.signup_invitations (email, invited_by)
  values (address, (select auth.uid()))
  on conflict (email) do nothing;
  return found;
end;
$$;

comment on function private.record_signup_invitation(uuid, text) is
  'Records an address an owner or admin of the workspace invites (true when new).';

revoke all on function private.record_signup_invitation(uuid, text) from public, anon;
grant execute on function private.record_signup_invitation(uuid, text) to authenticated, service_role;
