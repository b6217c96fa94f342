import { Token } from "cdktf";

/**
 * Terraform reads every string in its JSON syntax as a template: `${` starts an expression and `%{` a directive.
 * A generated file carried as a string (a VM's startup script) is full of shell `${VAR}` and must reach the VM byte
 * for byte, so both are doubled, which is Terraform's escape. A string holding cdktf tokens is refused: their
 * references would be escaped too and never resolved.
 */
export function terraformLiteral(text: string): string {
  if (Token.isUnresolved(text)) {
    throw new Error("terraformLiteral: the text holds cdktf tokens (resource attributes); pass plain text and put references in their own attributes");
  }
  // Replacer functions: in a replacement string "$$" would itself mean one "$".
  return text.replace(/\$\{/g, () => "$${").replace(/%\{/g, () => "%%{");
}

/** What Terraform renders from a string written by terraformLiteral (or any string without expressions). */
export function renderedByTerraform(text: string): string {
  return text.replace(/\$\$\{/g, () => "${").replace(/%%\{/g, () => "%{");
}
