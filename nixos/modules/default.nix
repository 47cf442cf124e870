# Both Bento modules; each does nothing until its `enable` is set.
{
  imports = [ ./hub ./client ];
}
